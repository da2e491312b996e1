//! Bearer-token access control: who a token belongs to and what its role lets it do. Tokens
//! come from the configuration (inline or from an environment variable) and are compared in
//! constant time: on their SHA-256 digests (fixed length, so a length mismatch returns no
//! earlier than a byte mismatch) with `subtle`, which the optimiser cannot short-circuit.

use crate::config::{Role, TokenConfig};
use crate::tickets::{Actor, Channel};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use subtle::ConstantTimeEq;
use tonic::{Request, Status};

/// Who is calling, once their token checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// Everything.
    Admin { name: String },
    /// Creates, reads and edits tickets; recorded by agent id.
    Agent { agent_id: String },
    /// Creates and reads tickets of its own channel only.
    Integration { name: String, channel: Channel },
    /// A responsible unit's desk: reads and acts on tickets dispatched to `unit` only.
    Unit { name: String, unit: String },
}

impl Caller {
    /// How the audit trail names this caller.
    pub fn actor(&self) -> String {
        match self {
            Caller::Admin { name } => format!("admin:{name}"),
            Caller::Agent { agent_id } => format!("agent:{agent_id}"),
            Caller::Integration { name, .. } => format!("integration:{name}"),
            Caller::Unit { name, .. } => format!("unit:{name}"),
        }
    }

    /// Who acts in the service rules: admins as centre supervisors, agents as centre
    /// agents. The audit name (`store::audit_name`) matches [`Caller::actor`].
    pub fn rules_actor(&self) -> Actor {
        match self {
            Caller::Admin { name } => Actor::CentreAdmin { id: name.clone() },
            Caller::Agent { agent_id } => Actor::CentreAgent {
                id: agent_id.clone(),
            },
            Caller::Integration { name, channel } => Actor::Integration {
                channel: *channel,
                id: name.clone(),
            },
            Caller::Unit { name, unit } => Actor::Unit {
                unit: unit.clone(),
                user: name.clone(),
            },
        }
    }
}

/// The tokens the server accepts.
#[derive(Debug, Clone, Default)]
pub struct AccessList {
    /// SHA-256 digest of each token, with its holder.
    entries: Arc<Vec<(TokenDigest, Caller)>>,
}

impl AccessList {
    /// Resolves `grpc.tokens`: reads `token_env` variables and checks each entry carries
    /// what its role needs.
    pub fn from_config(tokens: &[TokenConfig]) -> Result<AccessList, String> {
        let mut entries = Vec::with_capacity(tokens.len());
        for (i, entry) in tokens.iter().enumerate() {
            let at = format!("grpc.tokens[{i}] ({})", entry.name);
            let token = match (&entry.token, &entry.token_env) {
                (Some(token), None) => token.clone(),
                (None, Some(var)) => std::env::var(var).map_err(|_| {
                    format!("{at}: environment variable {var} is not set; export it or use token")
                })?,
                _ => return Err(format!("{at}: set exactly one of token and token_env")),
            };
            if token.len() < 16 {
                return Err(format!(
                    "{at}: the token is shorter than 16 characters; use a long random one"
                ));
            }
            let caller = match entry.role {
                Role::Admin => Caller::Admin {
                    name: entry.name.clone(),
                },
                Role::Agent => Caller::Agent {
                    agent_id: entry
                        .agent_id
                        .clone()
                        .ok_or_else(|| format!("{at}: an agent token needs agent_id"))?,
                },
                Role::Integration => {
                    let code = entry.channel.as_deref().ok_or_else(|| {
                        format!("{at}: an integration token needs channel (e.g. \"wechat\")")
                    })?;
                    Caller::Integration {
                        name: entry.name.clone(),
                        channel: code
                            .parse()
                            .map_err(|err| format!("{at}: channel: {err}"))?,
                    }
                }
                Role::Unit => Caller::Unit {
                    name: entry.name.clone(),
                    unit: entry
                        .unit
                        .clone()
                        .filter(|code| crate::config::is_unit_code(code))
                        .ok_or_else(|| format!("{at}: a unit token needs unit (a unit code)"))?,
                },
            };
            entries.push((digest(token.as_bytes()), caller));
        }
        Ok(AccessList {
            entries: Arc::new(entries),
        })
    }

    /// Adds one token (the generated admin token of a configuration without tokens).
    pub fn with(mut self, token: &str, caller: Caller) -> AccessList {
        Arc::make_mut(&mut self.entries).push((digest(token.as_bytes()), caller));
        self
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The caller holding `presented`. Looks at every entry, comparing in constant time, so
    /// timing tells nothing about which token nearly matched.
    fn identify(&self, presented: &[u8]) -> Option<Caller> {
        let presented = digest(presented);
        let mut found = None;
        for (token, caller) in self.entries.iter() {
            if bool::from(token.ct_eq(&presented)) && found.is_none() {
                found = Some(caller.clone());
            }
        }
        found
    }

    /// Checks the `authorization: Bearer …` header and attaches the [`Caller`] to the
    /// request's extensions.
    pub fn check(&self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let header = request
            .metadata()
            .get("authorization")
            .ok_or_else(|| {
                Status::unauthenticated(
                    "missing authorization header: send `authorization: Bearer <token>`",
                )
            })?
            .as_bytes();
        let token = header
            .strip_prefix(b"Bearer ")
            .or_else(|| header.strip_prefix(b"bearer "))
            .ok_or_else(|| {
                Status::unauthenticated("authorization header must be `Bearer <token>`")
            })?;
        let caller = self
            .identify(token)
            .ok_or_else(|| Status::unauthenticated("unknown token: check the configured tokens"))?;
        request.extensions_mut().insert(caller);
        Ok(request)
    }
}

type TokenDigest = [u8; 32];

/// The SHA-256 digest of a token: what is stored and compared, so every comparison covers
/// 32 bytes whatever the presented token's length.
fn digest(token: &[u8]) -> TokenDigest {
    Sha256::digest(token).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(role: Role) -> TokenConfig {
        TokenConfig {
            name: "t".into(),
            role,
            token: Some("0123456789abcdef".into()),
            token_env: None,
            agent_id: None,
            channel: None,
            unit: None,
        }
    }

    #[test]
    fn token_entries_must_carry_what_their_role_needs() {
        let err = |entry: TokenConfig| AccessList::from_config(&[entry]).unwrap_err();
        assert_eq!(
            err(entry(Role::Agent)),
            "grpc.tokens[0] (t): an agent token needs agent_id"
        );
        assert!(err(entry(Role::Integration)).contains("needs channel"));
        assert!(err(entry(Role::Unit)).contains("needs unit"));
        let bad_channel = TokenConfig {
            channel: Some("fax".into()),
            ..entry(Role::Integration)
        };
        assert!(err(bad_channel).contains("channel: unknown Channel code \"fax\""));
        let short = TokenConfig {
            token: Some("secret".into()),
            ..entry(Role::Admin)
        };
        assert!(err(short).contains("shorter than 16"));
        let from_missing_env = TokenConfig {
            token: None,
            token_env: Some("HOTLINE_TEST_TOKEN_THAT_IS_NOT_SET".into()),
            ..entry(Role::Admin)
        };
        assert!(err(from_missing_env).contains("HOTLINE_TEST_TOKEN_THAT_IS_NOT_SET is not set"));
        let both = TokenConfig {
            token_env: Some("X".into()),
            ..entry(Role::Admin)
        };
        assert!(err(both).contains("exactly one of token and token_env"));

        let access = AccessList::from_config(&[entry(Role::Admin)]).unwrap();
        assert_eq!(
            access.identify(b"0123456789abcdef"),
            Some(Caller::Admin { name: "t".into() })
        );
        assert_eq!(access.identify(b"0123456789abcdeF"), None);
    }

    #[test]
    fn tokens_are_kept_and_compared_as_digests() {
        let access = AccessList::default().with(
            "0123456789abcdef",
            Caller::Admin {
                name: "generated".into(),
            },
        );
        // Only the digest is kept: the token's bytes are nowhere in the list.
        assert_eq!(access.entries[0].0, digest(b"0123456789abcdef"));
        assert!(access.identify(b"0123456789abcdef").is_some());
        // A prefix, an extension and an empty token all fail, the same way as a wrong byte.
        for wrong in [&b"0123456789abcde"[..], b"0123456789abcdef0", b"", b"x"] {
            assert_eq!(access.identify(wrong), None, "{wrong:?}");
        }
    }
}
