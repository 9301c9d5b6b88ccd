//! HTTPS: the real binary serving TLS with a certificate from a CA made in the test (with the
//! `openssl` command), re-reading a rotated certificate without a restart, and refusing to start on
//! half a configuration. The microservices topology over TLS is in `microservices.rs`.

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use reqwest::StatusCode;

/// A certificate authority and the server certificates it signs, as PEM files in one directory.
pub struct TestCa {
    dir: PathBuf,
    name: String,
}

pub struct ServerCert {
    pub cert: PathBuf,
    pub key: PathBuf,
}

fn openssl(args: &[&str], dir: &Path) {
    let out = Command::new("openssl").args(args).current_dir(dir).output().expect("the openssl command runs");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

impl TestCa {
    pub fn new(dir: &Path, name: &str) -> TestCa {
        std::fs::create_dir_all(dir).unwrap();
        let (key, cert) = (format!("{name}.key"), format!("{name}.crt"));
        openssl(
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-days",
                "2",
                "-keyout",
                &key,
                "-out",
                &cert,
                "-subj",
                &format!("/CN={name}"),
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
            dir,
        );
        TestCa { dir: dir.to_owned(), name: name.to_owned() }
    }

    pub fn cert(&self) -> PathBuf {
        self.dir.join(format!("{}.crt", self.name))
    }

    pub fn pem(&self) -> Vec<u8> {
        std::fs::read(self.cert()).unwrap()
    }

    /// A server certificate for `localhost` and 127.0.0.1, signed by this CA.
    pub fn issue(&self, name: &str) -> ServerCert {
        let ext = self.dir.join(format!("{name}.ext"));
        std::fs::write(
            &ext,
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
             keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        let (key, csr, cert) = (format!("{name}.key"), format!("{name}.csr"), format!("{name}.crt"));
        openssl(
            &[
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                &key,
                "-out",
                &csr,
                "-subj",
                "/CN=localhost",
            ],
            &self.dir,
        );
        let (ca_cert, ca_key) = (format!("{}.crt", self.name), format!("{}.key", self.name));
        openssl(
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                &ca_cert,
                "-CAkey",
                &ca_key,
                "-CAcreateserial",
                "-days",
                "2",
                "-out",
                &cert,
                "-extfile",
                ext.to_str().unwrap(),
            ],
            &self.dir,
        );
        ServerCert { cert: self.dir.join(cert), key: self.dir.join(key) }
    }
}

/// A client that trusts only `ca`.
pub fn client_trusting(ca: &TestCa) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&ca.pem()).unwrap())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn ticketgw(dir: &Path, port: u16, cert: &Path, key: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ticketgw"));
    for var in ["DATABASE_URL", "FAILPOINTS", "AMQP_URL", "TICKETGW_TARGET", "TICKETGW_DEMO", "PUBLIC_URL"] {
        cmd.env_remove(var);
    }
    cmd.env("TICKETGW_DATA_DIR", dir.join("data"))
        .env("TICKETGW_LISTEN", format!("127.0.0.1:{port}"))
        .env("TLS_CERT_FILE", cert)
        .env("TLS_KEY_FILE", key)
        .env("TLS_RELOAD_SECS", "1")
        .env("RUST_LOG", "info");
    cmd
}

/// The status of `url` on a new connection (a pooled one would keep the certificate it began with).
async fn status(trusting: &TestCa, url: &str) -> Option<StatusCode> {
    client_trusting(trusting).get(url).send().await.ok().map(|r| r.status())
}

#[tokio::test]
async fn serves_https_and_picks_up_a_rotated_certificate_without_a_restart() {
    let dir = std::env::temp_dir().join(format!("tg-tls-{}", uuid::Uuid::new_v4().simple()));
    let (old_ca, new_ca) = (TestCa::new(&dir, "old-ca"), TestCa::new(&dir, "new-ca"));
    let (old, new) = (old_ca.issue("old"), new_ca.issue("new"));
    // The files the server reads, as a Kubernetes Secret volume holds them.
    let (cert, key) = (dir.join("tls.crt"), dir.join("tls.key"));
    std::fs::copy(&old.cert, &cert).unwrap();
    std::fs::copy(&old.key, &key).unwrap();
    let port = free_port();
    let log = std::fs::File::create(dir.join("server.log")).unwrap();
    let _server = Server(ticketgw(&dir, port, &cert, &key).arg("serve").stderr(log).spawn().unwrap());
    let url = format!("https://localhost:{port}/healthz");
    let deadline = Instant::now() + Duration::from_secs(60);
    while status(&old_ca, &url).await != Some(StatusCode::OK) {
        assert!(
            Instant::now() < deadline,
            "no HTTPS answer: {}",
            std::fs::read_to_string(dir.join("server.log")).unwrap()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status(&new_ca, &url).await, None, "the old certificate is not the new CA's");
    let plain = reqwest::get(format!("http://127.0.0.1:{port}/healthz")).await;
    assert!(plain.is_err() || plain.unwrap().status() != StatusCode::OK, "plain HTTP is not served");

    // The container's health check speaks HTTPS to the same port.
    let probe = ticketgw(&dir, port, &cert, &key).arg("probe").stderr(Stdio::piped()).output().unwrap();
    assert!(probe.status.success(), "probe: {}", String::from_utf8_lossy(&probe.stderr));

    // A half-written rotation (the key not yet there) is not taken: the old certificate stays.
    std::fs::copy(&new.cert, &cert).unwrap();
    std::fs::write(&key, b"not yet").unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(status(&old_ca, &url).await, Some(StatusCode::OK), "a broken pair keeps the old certificate");

    std::fs::copy(&new.key, &key).unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while status(&new_ca, &url).await != Some(StatusCode::OK) {
        assert!(Instant::now() < deadline, "the rotated certificate was not picked up");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(status(&old_ca, &url).await, None, "the old certificate is no longer served");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn half_a_tls_configuration_is_refused_at_start() {
    let dir = std::env::temp_dir().join(format!("tg-tls-{}", uuid::Uuid::new_v4().simple()));
    let ca = TestCa::new(&dir, "ca");
    let pair = ca.issue("server");
    let mut cmd = ticketgw(&dir, free_port(), &pair.cert, &pair.key);
    let out = cmd.env_remove("TLS_KEY_FILE").arg("serve").output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("TLS_CERT_FILE and TLS_KEY_FILE go together"));

    // A key that is not the certificate's.
    let other = ca.issue("other");
    let out = ticketgw(&dir, free_port(), &pair.cert, &other.key).arg("serve").output().unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("does not match"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}
