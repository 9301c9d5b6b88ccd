//! HTTPS for every target. The server's certificate and key come from PEM files (in Kubernetes,
//! the Secret that cert-manager's `Certificate` keeps current) and are re-read when they change, so a
//! rotation needs no restart. Calls to other services trust the internal CA (`TLS_CA_FILE`) besides
//! the public roots.

use std::{
    path::{Path, PathBuf},
    sync::{Arc, OnceLock, RwLock},
    time::Duration,
};

use anyhow::Context;
use rustls::{
    pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer},
    server::{ClientHello, ResolvesServerCert},
    sign::CertifiedKey,
    ServerConfig,
};

/// Where the server's certificate chain and private key are.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// The current certificate, swapped by [`CertReloader::watch`] when the files change.
#[derive(Debug)]
pub struct CertReloader {
    files: TlsFiles,
    current: RwLock<(Arc<CertifiedKey>, Vec<u8>)>,
}

impl CertReloader {
    /// Load the files now: a server must not start without a usable certificate.
    pub fn load(files: TlsFiles) -> anyhow::Result<Arc<CertReloader>> {
        let (key, fingerprint) = read(&files)?;
        Ok(Arc::new(CertReloader { files, current: RwLock::new((Arc::new(key), fingerprint)) }))
    }

    /// Re-read the files every `every`; a changed pair that loads replaces the current one, one
    /// that does not (half-written, key of another certificate) is logged and the old one kept.
    pub fn watch(self: &Arc<Self>, every: Duration) {
        let reloader = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(reloader) = reloader.upgrade() else { return };
                reloader.reload();
            }
        });
    }

    /// Replace the certificate when the files changed; true when it was replaced.
    pub fn reload(&self) -> bool {
        let Ok(bytes) = raw(&self.files) else {
            tracing::warn!(cert = %self.files.cert.display(), "TLS files unreadable; keeping the current certificate");
            return false;
        };
        if self.current.read().expect("lock").1 == bytes {
            return false;
        }
        match read(&self.files) {
            Ok((key, fingerprint)) => {
                *self.current.write().expect("lock") = (Arc::new(key), fingerprint);
                tracing::info!(cert = %self.files.cert.display(), "TLS certificate reloaded");
                true
            }
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "new TLS files do not load; keeping the current certificate");
                false
            }
        }
    }

    /// The rustls configuration serving whatever certificate is current.
    pub fn server_config(self: &Arc<Self>) -> Arc<ServerConfig> {
        let mut config = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("the ring provider supports the default versions")
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(config)
    }
}

impl ResolvesServerCert for CertReloader {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.read().expect("lock").0.clone())
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Both files' bytes: what tells a rotation apart from nothing new.
fn raw(files: &TlsFiles) -> std::io::Result<Vec<u8>> {
    let mut bytes = std::fs::read(&files.cert)?;
    bytes.extend(std::fs::read(&files.key)?);
    Ok(bytes)
}

fn read(files: &TlsFiles) -> anyhow::Result<(CertifiedKey, Vec<u8>)> {
    let fingerprint =
        raw(files).with_context(|| format!("reading {} and {}", files.cert.display(), files.key.display()))?;
    let chain = certificates(&files.cert)?;
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .with_context(|| format!("no private key in {}", files.key.display()))?;
    let certified = CertifiedKey::from_der(chain, key, &provider()).with_context(|| {
        format!("{} does not match the certificate in {}", files.key.display(), files.cert.display())
    })?;
    Ok((certified, fingerprint))
}

fn certificates(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let chain = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("reading certificates from {}", path.display()))?;
    anyhow::ensure!(!chain.is_empty(), "no certificate in {}", path.display());
    Ok(chain)
}

static INTERNAL_CA: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();
static CLIENT_CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();

/// Trust the CA certificates in `path` on calls to other services. Call once at start, before any
/// HTTP client is built.
pub fn trust_internal_ca(path: &Path) -> anyhow::Result<()> {
    let certs = certificates(path)?;
    anyhow::ensure!(CLIENT_CONFIG.get().is_none(), "the internal CA must be set before HTTP clients are built");
    anyhow::ensure!(INTERNAL_CA.set(certs).is_ok(), "the internal CA is already set");
    Ok(())
}

/// TLS settings of every outbound client: the public roots (payment providers, Telegram, external
/// identity providers) and the internal CA, when one is set.
pub fn client_config() -> Arc<rustls::ClientConfig> {
    CLIENT_CONFIG
        .get_or_init(|| {
            let mut roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
            for ca in INTERNAL_CA.get().into_iter().flatten() {
                if let Err(e) = roots.add(ca.clone()) {
                    tracing::error!(error = %e, "an internal CA certificate is unusable");
                }
            }
            let config = rustls::ClientConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()
                .expect("the ring provider supports the default versions")
                .with_root_certificates(roots)
                .with_no_client_auth();
            Arc::new(config)
        })
        .clone()
}
