//! MQTT over TLS for the tests: a private certificate authority made at test time (rcgen), a Mosquitto with a TLS
//! listener signed by it (optionally requiring client certificates), and a TLS publisher. Shared with twin-api's
//! notification tests (included there by path).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

pub const MOSQUITTO: &str = "/usr/sbin/mosquitto";

/// True when Mosquitto can run here; otherwise says why (and fails under CI, which must run these tests).
pub fn mosquitto_available() -> bool {
    let ok = Path::new(MOSQUITTO).exists();
    if !ok {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("CI must run the MQTT over TLS tests, but {MOSQUITTO} is missing");
        }
        eprintln!("skipped: Mosquitto ({MOSQUITTO}) is not installed here");
    }
    ok
}

/// The PEM files of a test PKI: a CA, the broker's certificate for 127.0.0.1 and localhost, a client certificate
/// signed by the CA, and a second CA that signed nothing of this broker (trusting it must fail).
pub struct Pki {
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    pub other_ca: PathBuf,
}

fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    p.distinguished_name.push(DnType::CommonName, name);
    CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap()
}

fn leaf(
    issuer: &CertifiedIssuer<'static, KeyPair>,
    cn: &str,
    names: Vec<String>,
    usage: ExtendedKeyUsagePurpose,
) -> (String, String) {
    let mut p = CertificateParams::new(names).unwrap();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.extended_key_usages = vec![usage];
    p.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    p.use_authority_key_identifier_extension = true;
    let key = KeyPair::generate().unwrap();
    let cert = p.signed_by(&key, issuer).unwrap();
    (cert.pem(), key.serialize_pem())
}

impl Pki {
    /// Makes the certificates and keys in `dir`.
    pub fn generate(dir: &Path) -> Pki {
        std::fs::create_dir_all(dir).unwrap();
        let authority = ca("urbantwin test CA");
        let (server_cert, server_key) = leaf(
            &authority,
            "mosquitto",
            vec!["127.0.0.1".into(), "localhost".into()],
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        let (client_cert, client_key) = leaf(
            &authority,
            "urbantwin-hub",
            vec![],
            ExtendedKeyUsagePurpose::ClientAuth,
        );
        let other = ca("another CA");
        let write = |name: &str, text: &str| {
            let p = dir.join(name);
            std::fs::write(&p, text).unwrap();
            p
        };
        Pki {
            ca: write("ca.pem", &authority.pem()),
            server_cert: write("server.pem", &server_cert),
            server_key: write("server.key", &server_key),
            client_cert: write("client.pem", &client_cert),
            client_key: write("client.key", &client_key),
            other_ca: write("other-ca.pem", &other.pem()),
        }
    }
}

/// A Mosquitto listening with TLS only, on a port of its own.
pub struct TlsBroker {
    pub port: u16,
    child: Child,
}

impl TlsBroker {
    /// Starts it in `dir` with the broker certificate of `pki`; with `require_certificate`, clients must present a
    /// certificate signed by the CA.
    pub fn start(dir: &Path, pki: &Pki, require_certificate: bool) -> TlsBroker {
        std::fs::create_dir_all(dir).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let conf = dir.join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!(
                "per_listener_settings false\nallow_anonymous true\nuser root\nlog_dest file {log}\nlog_type all\n\
                 listener {port} 127.0.0.1\ncafile {ca}\ncertfile {cert}\nkeyfile {key}\nrequire_certificate {req}\n",
                log = dir.join("mosquitto.log").display(),
                ca = pki.ca.display(),
                cert = pki.server_cert.display(),
                key = pki.server_key.display(),
                req = require_certificate,
            ),
        )
        .unwrap();
        let child = Command::new(MOSQUITTO)
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mosquitto");
        let t = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "mosquitto did not start; see {}",
                dir.join("mosquitto.log").display()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        TlsBroker { port, child }
    }

    pub fn url(&self) -> String {
        format!("mqtts://127.0.0.1:{}", self.port)
    }
}

impl Drop for TlsBroker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An MQTT 5 client over TLS to the broker on `port`, trusting `ca` and presenting `client` (certificate, key) if
/// given.
pub fn tls_client(
    id: &str,
    port: u16,
    ca: &Path,
    client: Option<(&Path, &Path)>,
) -> (rumqttc::v5::AsyncClient, rumqttc::v5::EventLoop) {
    let tls = twin_ingest::tls::client_config(twin_ingest::tls::TlsFiles {
        ca_file: Some(ca),
        client_cert_file: client.map(|c| c.0),
        client_key_file: client.map(|c| c.1),
    })
    .unwrap();
    let mut opts = rumqttc::v5::MqttOptions::new(id, "127.0.0.1", port);
    opts.set_clean_start(true)
        .set_transport(rumqttc::Transport::tls_with_config(
            rumqttc::TlsConfiguration::Rustls(tls),
        ));
    rumqttc::v5::AsyncClient::new(opts, 1024)
}

/// Publishes each payload at QoS 1 on `topic` over TLS and returns once the broker acknowledged every one.
pub async fn publish_tls(
    port: u16,
    ca: &Path,
    client: Option<(&Path, &Path)>,
    topic: &str,
    payloads: Vec<String>,
) {
    use rumqttc::v5::mqttbytes::v5::Packet;
    use rumqttc::v5::mqttbytes::QoS;
    use rumqttc::v5::Event;
    let id = format!("tls-publisher-{}-{}", std::process::id(), port);
    let (client, mut eventloop) = tls_client(&id, port, ca, client);
    let n = payloads.len();
    let acks = tokio::spawn(async move {
        let mut acked = 0;
        while acked < n {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::PubAck(_))) => acked += 1,
                Ok(_) => {}
                Err(e) => panic!("the TLS publisher lost the broker: {e}"),
            }
        }
        eventloop
    });
    for p in payloads {
        client
            .publish(topic.to_string(), QoS::AtLeastOnce, false, p)
            .await
            .unwrap();
    }
    let mut eventloop = tokio::time::timeout(Duration::from_secs(20), acks)
        .await
        .expect("the broker acknowledged the TLS publications")
        .unwrap();
    client.disconnect().await.unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(2), eventloop.poll()).await;
}
