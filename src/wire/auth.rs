//! Logging in to a workspace over the wire: SCRAM-SHA-256 against the keys the catalog holds
//! (RFC 5802/7677, no channel binding), or a cleartext password only when
//! PGWIRE_ALLOW_CLEARTEXT=true; failed passwords are throttled per client address. A login
//! that succeeds opens the workspace session the connection then uses.

use std::fmt::Debug;
use std::net::IpAddr;
use std::sync::Arc;

use async_trait::async_trait;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use bytes::Bytes;
use futures_util::Sink;
use pgwire::api::auth::driver::AuthOutcome;
use pgwire::api::auth::mechanism::{AuthMechanism, AuthState};
use pgwire::api::auth::{
    protocol_negotiation, save_startup_parameters_to_metadata, AuthDriver,
    DefaultServerParameterProvider, StartupHandler,
};
use pgwire::api::{ClientInfo, METADATA_DATABASE, METADATA_USER};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::startup::{Authentication, PasswordMessageFamily};
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{error_info, WireSession};
use crate::auth::throttle::{client_key, FailureLimiter};
use crate::catalog::workspaces::WorkspaceRecord;
use crate::error::ApiResult;
use crate::state::AppState;
use crate::workspace::scram::{hmac, ScramSecret};

/// Who logged in: the workspace, by project and id.
#[derive(Debug, Clone)]
pub struct Login {
    pub project: String,
    pub id: String,
}

/// The login checks both wire faces share (this server's and `/internal/pgwire/auth` for an
/// external one): one failed-password throttle per client address, and stable fake salts for
/// unknown users, so a probe cannot tell them apart.
pub struct Logins {
    failures: Option<FailureLimiter<IpAddr>>,
    fake_key: [u8; 32],
}

impl Logins {
    pub fn new(failures_per_minute: u32) -> Self {
        let mut fake_key = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut fake_key);
        Self {
            failures: FailureLimiter::new(failures_per_minute, 10_000),
            fake_key,
        }
    }

    /// How long `address` must wait before another password is checked, if it is blocked.
    pub fn blocked(&self, address: IpAddr) -> Option<std::time::Duration> {
        self.failures.as_ref()?.blocked(&client_key(address))
    }

    /// Counts one failed password from `address`.
    pub fn failed(&self, address: IpAddr) {
        if let Some(f) = &self.failures {
            f.record(client_key(address));
        }
    }

    /// The secret of the workspace `user` names, or a fake one (stable per user name) that
    /// no password or proof matches (blocking: reads the catalog).
    pub fn secret(
        &self,
        state: &AppState,
        user: &str,
    ) -> ApiResult<(ScramSecret, Option<WorkspaceRecord>)> {
        Ok(match state.catalog.workspace_by_id(user)? {
            Some(r) => (r.secret.clone(), Some(r)),
            None => {
                let salt = hmac(&self.fake_key, user.as_bytes())[..16].to_vec();
                let mut stored_key = [0u8; 32];
                rand::thread_rng().fill_bytes(&mut stored_key);
                (
                    ScramSecret {
                        salt,
                        iterations: crate::workspace::scram::ITERATIONS,
                        stored_key,
                        server_key: stored_key,
                    },
                    None,
                )
            }
        })
    }

    /// The workspace whose password `password` is (blocking: one PBKDF2 run whether the user
    /// exists or not). Throttling is the caller's.
    pub fn check_password(
        &self,
        state: &AppState,
        user: &str,
        password: &str,
    ) -> ApiResult<Option<WorkspaceRecord>> {
        let (secret, record) = self.secret(state, user)?;
        let ok = secret.matches(password);
        Ok(record.filter(|_| ok))
    }
}

pub struct Startup {
    state: AppState,
    driver: AuthDriver<DefaultServerParameterProvider, Login>,
}

impl Startup {
    pub fn new(state: AppState) -> Self {
        let mut params = DefaultServerParameterProvider::default();
        params.server_version = format!("16.0 (duckbank {})", env!("CARGO_PKG_VERSION"));
        Self {
            state,
            driver: AuthDriver::new(params),
        }
    }

    fn mechanism(&self, client: &dyn ClientInfo) -> Box<dyn AuthMechanism<Login>> {
        let user = client
            .metadata()
            .get(METADATA_USER)
            .cloned()
            .unwrap_or_default();
        let lookup = Lookup {
            state: self.state.clone(),
            user,
        };
        if self.state.config.pgwire_allow_cleartext {
            Box::new(Cleartext { lookup })
        } else {
            Box::new(Scram {
                lookup,
                step: Step::Start,
            })
        }
    }
}

/// Finds the workspace a login names (the user name is the workspace id).
struct Lookup {
    state: AppState,
    user: String,
}

impl Lookup {
    /// The workspace's secret, or a fake one (stable per user name) that no proof matches.
    async fn secret(&self) -> PgWireResult<(ScramSecret, Option<Login>)> {
        let (state, user) = (self.state.clone(), self.user.clone());
        let (secret, record) = crate::service::blocking(move || state.logins.secret(&state, &user))
            .await
            .map_err(|e| PgWireError::UserError(Box::new(error_info(&e))))?;
        Ok((
            secret,
            record.map(|r| Login {
                project: r.project,
                id: r.id,
            }),
        ))
    }

    fn refused(&self) -> PgWireError {
        PgWireError::InvalidPassword(self.user.clone())
    }
}

enum Step {
    Start,
    /// Sent server-first; waiting for client-final.
    Challenged(Box<Challenge>),
    Done,
}

/// What the server sent in server-first and needs to check client-final.
struct Challenge {
    secret: ScramSecret,
    login: Option<Login>,
    gs2_header: String,
    nonce: String,
    /// client-first-bare + "," + server-first, the start of the AuthMessage.
    auth_start: String,
}

struct Scram {
    lookup: Lookup,
    step: Step,
}

fn bad(message: &str) -> PgWireError {
    PgWireError::InvalidScramMessage(message.to_string())
}

#[async_trait]
impl AuthMechanism<Login> for Scram {
    async fn begin(
        &mut self,
        _: &(dyn ClientInfo + Send + Sync),
    ) -> PgWireResult<AuthState<Login>> {
        Ok(AuthState::InProgress(Authentication::SASL(vec![
            "SCRAM-SHA-256".to_string(),
        ])))
    }

    async fn next(
        &mut self,
        _: &(dyn ClientInfo + Send + Sync),
        message: PasswordMessageFamily,
    ) -> PgWireResult<AuthState<Login>> {
        match std::mem::replace(&mut self.step, Step::Done) {
            Step::Start => {
                let initial = message.into_sasl_initial_response()?;
                if initial.auth_method != "SCRAM-SHA-256" {
                    return Err(bad("only SCRAM-SHA-256 is offered"));
                }
                let data = initial.data.ok_or_else(|| bad("no client-first message"))?;
                let text = std::str::from_utf8(&data).map_err(|_| bad("not UTF-8"))?;
                // gs2-header: "n,," or "y,," (channel binding is not offered).
                let (gs2_header, bare) = match text.get(..3) {
                    Some("n,,") | Some("y,,") => (&text[..3], &text[3..]),
                    _ => return Err(bad("channel binding and authzid are not supported")),
                };
                let client_nonce = bare
                    .split(',')
                    .find_map(|p| p.strip_prefix("r="))
                    .filter(|n| !n.is_empty())
                    .ok_or_else(|| bad("no client nonce"))?;
                let mut extra = [0u8; 18];
                rand::thread_rng().fill_bytes(&mut extra);
                let nonce = format!("{client_nonce}{}", B64.encode(extra));
                let (secret, login) = self.lookup.secret().await?;
                let server_first = format!(
                    "r={nonce},s={},i={}",
                    B64.encode(&secret.salt),
                    secret.iterations
                );
                self.step = Step::Challenged(Box::new(Challenge {
                    secret,
                    login,
                    gs2_header: gs2_header.to_string(),
                    nonce,
                    auth_start: format!("{bare},{server_first}"),
                }));
                Ok(AuthState::InProgress(Authentication::SASLContinue(
                    Bytes::from(server_first),
                )))
            }
            Step::Challenged(challenge) => {
                let Challenge {
                    secret,
                    login,
                    gs2_header,
                    nonce,
                    auth_start,
                } = *challenge;
                let response = message.into_sasl_response()?;
                let text = std::str::from_utf8(&response.data).map_err(|_| bad("not UTF-8"))?;
                let (without_proof, proof) = text
                    .rsplit_once(",p=")
                    .ok_or_else(|| bad("no client proof"))?;
                let mut binding = None;
                let mut their_nonce = None;
                for part in without_proof.split(',') {
                    if let Some(c) = part.strip_prefix("c=") {
                        binding = Some(c);
                    } else if let Some(r) = part.strip_prefix("r=") {
                        their_nonce = Some(r);
                    }
                }
                if binding.and_then(|c| B64.decode(c).ok()).as_deref()
                    != Some(gs2_header.as_bytes())
                    || their_nonce != Some(nonce.as_str())
                {
                    return Err(bad("channel binding or nonce mismatch"));
                }
                let proof = B64.decode(proof).map_err(|_| bad("proof is not base64"))?;
                let auth_message = format!("{auth_start},{without_proof}");
                let signature = hmac(&secret.stored_key, auth_message.as_bytes());
                if proof.len() != 32 {
                    return Err(self.lookup.refused());
                }
                let client_key: Vec<u8> = proof.iter().zip(signature).map(|(p, s)| p ^ s).collect();
                let matches: bool = Sha256::digest(&client_key).ct_eq(&secret.stored_key).into();
                match login {
                    Some(login) if matches => {
                        let server_signature = hmac(&secret.server_key, auth_message.as_bytes());
                        Ok(AuthState::Ok {
                            final_message: Some(Authentication::SASLFinal(Bytes::from(format!(
                                "v={}",
                                B64.encode(server_signature)
                            )))),
                            identity: Some(login),
                        })
                    }
                    _ => Err(self.lookup.refused()),
                }
            }
            Step::Done => Err(bad("authentication already finished")),
        }
    }
}

/// Cleartext passwords (PGWIRE_ALLOW_CLEARTEXT=true only): checked against the same keys.
struct Cleartext {
    lookup: Lookup,
}

#[async_trait]
impl AuthMechanism<Login> for Cleartext {
    async fn begin(
        &mut self,
        _: &(dyn ClientInfo + Send + Sync),
    ) -> PgWireResult<AuthState<Login>> {
        Ok(AuthState::InProgress(Authentication::CleartextPassword))
    }

    async fn next(
        &mut self,
        _: &(dyn ClientInfo + Send + Sync),
        message: PasswordMessageFamily,
    ) -> PgWireResult<AuthState<Login>> {
        let password = message.into_password()?.password;
        let (secret, login) = self.lookup.secret().await?;
        let ok = crate::service::blocking(move || Ok(secret.matches(&password)))
            .await
            .unwrap_or(false);
        match login {
            Some(login) if ok => Ok(AuthState::Ok {
                final_message: None,
                identity: Some(login),
            }),
            _ => Err(self.lookup.refused()),
        }
    }
}

#[async_trait]
impl StartupHandler for Startup {
    async fn on_startup<C>(
        &self,
        client: &mut C,
        message: PgWireFrontendMessage,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let address = client.socket_addr().ip();
        match message {
            PgWireFrontendMessage::Startup(ref startup) => {
                protocol_negotiation(client, startup).await?;
                save_startup_parameters_to_metadata(client, startup);
                if let Some(wait) = self.state.logins.blocked(address) {
                    return Err(super::user_error(
                        "28P01",
                        &format!(
                            "too many failed logins from this address; retry in {} s",
                            wait.as_secs().max(1)
                        ),
                    ));
                }
                let mechanism = self.mechanism(&*client);
                self.driver.begin_authentication(client, mechanism).await?;
                Ok(())
            }
            PgWireFrontendMessage::PasswordMessageFamily(message) => {
                match self.driver.advance_authentication(client, message).await {
                    Ok(AuthOutcome::Authenticated {
                        identity,
                        final_message,
                    }) => {
                        let login =
                            identity.ok_or_else(|| super::user_error("28000", "no identity"))?;
                        let database = client.metadata().get(METADATA_DATABASE).cloned();
                        if database.is_some_and(|d| d != login.id) {
                            return Err(super::user_error(
                                "3D000",
                                &format!("database must be the workspace id '{}'", login.id),
                            ));
                        }
                        let session = super::open_session(&self.state, &login).await?;
                        client
                            .session_extensions()
                            .insert(Arc::new(WireSession::new(session, login)));
                        self.driver
                            .complete_authentication(client, final_message)
                            .await
                    }
                    Ok(AuthOutcome::InProgress) => Ok(()),
                    Err(e) => {
                        self.state.logins.failed(address);
                        Err(e)
                    }
                }
            }
            _ => Ok(()),
        }
    }
}
