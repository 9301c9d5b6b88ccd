//! The HTTP server of every target, over plain TCP or TLS, with the limits a public listener
//! needs: a client must send a request's headers within [`ServerLimits::header_read`] (also when a
//! kept-alive connection waits for its next request), at most [`ServerLimits::max_connections`]
//! connections are served at once (more wait in the listen backlog), and shutdown waits at most
//! [`ServerLimits::drain`] for open requests.

use std::{convert::Infallible, future::Future, net::SocketAddr, sync::Arc, time::Duration};

use axum::{extract::ConnectInfo, Router};
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    server::graceful::GracefulShutdown,
    service::TowerToHyperService,
};
use rustls::ServerConfig;
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::TcpListener,
    sync::Semaphore,
};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

#[derive(Clone, Copy, Debug)]
pub struct ServerLimits {
    /// Time to complete a TLS handshake, and to send a request's headers.
    pub header_read: Duration,
    /// Connections served at once.
    pub max_connections: usize,
    /// How long open connections may finish their requests once shutdown began.
    pub drain: Duration,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits { header_read: Duration::from_secs(10), max_connections: 10_000, drain: Duration::from_secs(25) }
    }
}

/// Serve `router` on `listener` until `shutdown` resolves: over TLS with `tls`, else plain HTTP/1.1.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    tls: Option<Arc<ServerConfig>>,
    limits: ServerLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let acceptor = tls.map(TlsAcceptor::from);
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(limits.header_read);
    tokio::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Out of file descriptors and the like: pause instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let (acceptor, router, builder, watcher) =
            (acceptor.clone(), router.clone(), builder.clone(), graceful.watcher());
        tokio::spawn(async move {
            let _slot = slot;
            let _ = tcp.set_nodelay(true);
            let Some(acceptor) = acceptor else {
                return serve_connection(&builder, watcher, TokioIo::new(tcp), router, peer).await;
            };
            match tokio::time::timeout(limits.header_read, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => serve_connection(&builder, watcher, TokioIo::new(tls), router, peer).await,
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(limits.drain, graceful.shutdown()).await.is_err() {
        tracing::warn!("connections still open after the drain time; closing them");
    }
    Ok(())
}

async fn serve_connection<IO>(
    builder: &hyper::server::conn::http1::Builder,
    watcher: hyper_util::server::graceful::Watcher,
    io: TokioIo<IO>,
    router: Router,
    peer: SocketAddr,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = tower::service_fn(move |mut req: axum::http::Request<hyper::body::Incoming>| {
        req.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
        let router = router.clone();
        async move { Ok::<_, Infallible>(router.oneshot(req).await.unwrap_or_else(|e| match e {})) }
    });
    let conn = builder.serve_connection(io, TowerToHyperService::new(service));
    if let Err(e) = watcher.watch(conn).await {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
}
