//! PostgreSQL storage (sqlx): migrations, the embedded private cluster used when no database
//! is configured, and the queries for customers, calls, tickets and their audit events.
//!
//! Owns SQL; must not decide service rules (those live in `tickets`).
