//! A private Mosquitto for the ingestion tests (the real broker, on a port of its own, so that tests can stop and
//! restart it), a publisher (`mosquitto_pub`), and opening the store the hub writes to.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const MOSQUITTO: &str = "/usr/sbin/mosquitto";

/// True when the broker can run here; otherwise says why (and fails under CI, which must run these tests).
pub fn broker_available() -> bool {
    let ok = Path::new(MOSQUITTO).exists()
        && Command::new("mosquitto_pub").arg("--help").output().is_ok();
    if !ok {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("CI must run the MQTT tests, but {MOSQUITTO} or mosquitto_pub is missing");
        }
        eprintln!("skipped: Mosquitto ({MOSQUITTO}, mosquitto_pub) is not installed here");
    }
    ok
}

pub struct Broker {
    pub port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Broker {
    /// Starts a broker that keeps sessions on disk in `dir` and queues without limit for offline sessions.
    pub fn start(dir: &Path) -> Broker {
        let mut b = Broker {
            port: free_port(),
            dir: dir.to_path_buf(),
            child: None,
        };
        b.restart();
        b
    }

    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }

    /// Starts it (again, on the same port and persistence).
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "the broker is running");
        std::fs::create_dir_all(&self.dir).unwrap();
        let conf = self.dir.join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!(
                "listener {} 127.0.0.1\nallow_anonymous true\nuser root\npersistence true\npersistence_location {}/\nmax_queued_messages 10000000\nautosave_interval 1\nlog_dest file {}/mosquitto.log\n",
                self.port,
                self.dir.display(),
                self.dir.display()
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
        self.child = Some(child);
        let t = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "mosquitto did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops it the way an operator does (SIGTERM: it saves its sessions and queued messages).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            unsafe_kill(c.id(), "TERM");
            let _ = c.wait();
        }
    }

    /// Publishes each line as one QoS 1 message on `topic` and waits until the broker acknowledged them all.
    pub fn publish_lines(&self, topic: &str, lines: &[String]) {
        publish_lines(self.port, topic, lines)
    }
}

pub fn publish_lines(port: u16, topic: &str, lines: &[String]) {
    use std::io::Write;
    let mut p = Command::new("mosquitto_pub")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-q",
            "1",
            "-t",
            topic,
            "-l",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("run mosquitto_pub");
    {
        let mut stdin = std::io::BufWriter::new(p.stdin.take().unwrap());
        for l in lines {
            writeln!(stdin, "{l}").unwrap();
        }
    }
    assert!(p.wait().unwrap().success(), "mosquitto_pub failed");
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

pub fn unsafe_kill(pid: u32, signal: &str) {
    let _ = Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status();
}

/// Waits until `f` holds (polling), or fails after `secs`.
pub async fn eventually(secs: u64, what: &str, mut f: impl AsyncFnMut() -> bool) {
    let t = Instant::now();
    loop {
        if f().await {
            return;
        }
        assert!(
            t.elapsed() < Duration::from_secs(secs),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Publishes each payload as one QoS 1 message on `topic` with an MQTT 5 client of our own and returns once the
/// broker acknowledged every one (`mosquitto_pub -l` 2.0.11 was seen to exit successfully after sending only the
/// first 34,467 of 100,000 lines, so large feeds do not go through it).
pub async fn publish_all(port: u16, topic: &str, payloads: Vec<String>) {
    use rumqttc::v5::mqttbytes::v5::Packet;
    use rumqttc::v5::mqttbytes::QoS;
    use rumqttc::v5::{AsyncClient, Event, MqttOptions};
    let id = format!("publisher-{}-{}", std::process::id(), free_port());
    let mut opts = MqttOptions::new(id, "127.0.0.1", port);
    opts.set_clean_start(true);
    let (client, mut eventloop) = AsyncClient::new(opts, 1024);
    let n = payloads.len();
    let acks = tokio::spawn(async move {
        let mut acked = 0;
        while acked < n {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::PubAck(_))) => acked += 1,
                Ok(_) => {}
                Err(e) => panic!("the publisher lost the broker: {e}"),
            }
        }
        eventloop
    });
    let topic = topic.to_string();
    for p in payloads {
        client
            .publish(topic.clone(), QoS::AtLeastOnce, false, p)
            .await
            .unwrap();
    }
    let mut eventloop = acks.await.unwrap();
    client.disconnect().await.unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(2), eventloop.poll()).await;
}
