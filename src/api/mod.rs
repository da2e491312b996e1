//! The gRPC API (tonic): `hotline.v1.Tickets` and friends, bearer-token access control,
//! health and reflection.
//!
//! Owns the wire mapping and access checks; rules come from `tickets`, SQL from `store`.
