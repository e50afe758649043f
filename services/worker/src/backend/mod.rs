//! Model server clients.
