//! TLS for the wire server (ADR 0033): loads PGWIRE_TLS_CERT and PGWIRE_TLS_KEY at start-up,
//! answers a client's SSLRequest with 'S' and runs the connection over rustls (ring provider);
//! clients that ask for no TLS are served in the clear as before. Owns the negotiation and the
//! protocol loop over any stream; pgwire's own TLS (its `_ring` feature) is not used.

use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use futures_util::StreamExt;
use pgwire::api::PgWireServerHandlers;
use pgwire::api::{ClientInfo, DefaultClient, ErrorHandler, PgWireConnectionState};
use pgwire::messages::PgWireFrontendMessage;
use pgwire::tokio::server::{process_error, process_message, PgWireMessageServerCodec};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::rustls;
use tokio_rustls::TlsAcceptor;
use tokio_util::codec::{Framed, FramedParts};

use super::Handlers;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// How long a client has to negotiate and log in, as pgwire allows.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// The request codes a client may send before its startup message (PostgreSQL protocol 3).
const SSL_REQUEST: u32 = 80_877_103;
const GSSENC_REQUEST: u32 = 80_877_104;

/// The TLS acceptor for the configured certificate chain and key; an error names the setting
/// and the file.
pub fn acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, String> {
    let read = |path: &Path, setting: &str| {
        std::fs::read(path).map_err(|e| format!("{setting}: cannot read {}: {e}", path.display()))
    };
    let pem = read(cert, "PGWIRE_TLS_CERT")?;
    let chain = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            format!(
                "PGWIRE_TLS_CERT: {} is not a PEM certificate chain: {e}",
                cert.display()
            )
        })?;
    if chain.is_empty() {
        return Err(format!(
            "PGWIRE_TLS_CERT: {} holds no PEM certificate",
            cert.display()
        ));
    }
    let private = PrivateKeyDer::from_pem_slice(&read(key, "PGWIRE_TLS_KEY")?).map_err(|e| {
        format!(
            "PGWIRE_TLS_KEY: {} is not a PEM private key: {e}",
            key.display()
        )
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS set-up failed: {e}"))?
        .with_no_client_auth()
        .with_single_cert(chain, private)
        .map_err(|e| {
            format!(
                "PGWIRE_TLS_CERT / PGWIRE_TLS_KEY: {} and {} do not make a usable key pair: {e}",
                cert.display(),
                key.display()
            )
        })?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Serves one connection of a server with TLS: SSLRequest gets 'S' and a TLS handshake,
/// GSSENCRequest gets 'N', anything else is the startup message of a plain connection.
pub async fn serve(
    mut socket: TcpStream,
    tls: TlsAcceptor,
    handlers: Arc<Handlers>,
) -> io::Result<()> {
    let deadline = tokio::time::sleep(STARTUP_TIMEOUT);
    tokio::pin!(deadline);
    let addr = socket.peer_addr()?;
    socket.set_nodelay(true)?;
    let head = loop {
        let mut head = [0u8; 8];
        tokio::select! {
            _ = &mut deadline => return Ok(()),
            read = socket.read_exact(&mut head) => { read?; }
        }
        let length = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
        let code = u32::from_be_bytes([head[4], head[5], head[6], head[7]]);
        match (length, code) {
            (8, SSL_REQUEST) => break None,
            (8, GSSENC_REQUEST) => socket.write_all(b"N").await?,
            _ => break Some(head),
        }
    };
    match head {
        None => {
            socket.write_all(b"S").await?;
            let stream = tokio::select! {
                _ = &mut deadline => return Ok(()),
                accepted = tls.accept(socket) => accepted?,
            };
            run(
                stream,
                DefaultClient::new(addr, true),
                &[],
                deadline,
                &handlers,
            )
            .await
        }
        Some(head) => {
            run(
                socket,
                DefaultClient::new(addr, false),
                &head,
                deadline,
                &handlers,
            )
            .await
        }
    }
}

/// The protocol loop pgwire's `process_socket` runs, over any stream: `read` is what was
/// already read from it (the start of the startup message).
async fn run<S>(
    io: S,
    client: DefaultClient<String>,
    read: &[u8],
    mut deadline: std::pin::Pin<&mut tokio::time::Sleep>,
    handlers: &Handlers,
) -> io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + Sync + 'static,
{
    let mut parts = FramedParts::new(io, PgWireMessageServerCodec::new(client));
    parts.read_buf = BytesMut::from(read);
    let mut socket = Framed::from_parts(parts);
    socket.set_state(PgWireConnectionState::AwaitingStartup);
    let backend = handlers.0.clone();
    let startup = backend.startup.clone();
    let copy = handlers.copy_handler();
    let cancel = handlers.cancel_handler();
    let errors = handlers.error_handler();
    loop {
        let logging_in = matches!(
            socket.state(),
            PgWireConnectionState::AwaitingStartup
                | PgWireConnectionState::AuthenticationInProgress
        );
        let msg = if logging_in {
            tokio::select! {
                _ = &mut deadline => None,
                msg = socket.next() => msg,
            }
        } else {
            socket.next().await
        };
        let Some(Ok(msg)) = msg else { break };
        if matches!(msg, PgWireFrontendMessage::Terminate(_)) {
            break;
        }
        let extended = match socket.state() {
            PgWireConnectionState::CopyInProgress(extended) => extended,
            _ => msg.is_extended_query(),
        };
        let cancel_request = matches!(msg, PgWireFrontendMessage::CancelRequest(_));
        if let Err(mut e) = process_message(
            msg,
            &mut socket,
            startup.clone(),
            backend.clone(),
            backend.clone(),
            copy.clone(),
            cancel.clone(),
        )
        .await
        {
            errors.on_error(&socket, &mut e);
            let fatal = e.is_fatal();
            process_error(&mut socket, e, extended).await?;
            if fatal {
                break;
            }
        }
        if cancel_request {
            break;
        }
    }
    Ok(())
}
