#![allow(dead_code)]
//! Test certificates for the https tests and the TLS timing bench: a CA of their own, and server
//! certificates it signs (good, expired, for another host) or another CA signs (untrusted).

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, date_time_ymd};

/// A certificate authority the tests trust through `ca_file`.
pub struct TestCa {
    params: CertificateParams,
    key: KeyPair,
    pem: String,
}

/// A server certificate and its key, written as PEM files.
pub struct ServerCert {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// What a server certificate is made to be.
#[derive(Clone, Copy)]
pub enum Leaf {
    /// For `localhost` and 127.0.0.1, valid now.
    Good,
    /// For `localhost` and 127.0.0.1, but it expired in 2021.
    Expired,
    /// Valid now, for `other.example` only.
    OtherHost,
}

impl TestCa {
    pub fn new(name: &str) -> TestCa {
        let key = KeyPair::generate().expect("a CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let pem = params.self_signed(&key).expect("a CA certificate").pem();
        TestCa { params, key, pem }
    }

    /// Writes the CA's certificate (what a target's `ca_file` names) to `path`.
    pub fn write_pem(&self, path: &Path) -> PathBuf {
        std::fs::write(path, &self.pem).expect("write the CA");
        path.to_path_buf()
    }

    /// A server certificate signed by this CA, written under `dir` as `NAME.crt` / `NAME.key`.
    pub fn issue(&self, leaf: Leaf, dir: &Path, name: &str) -> ServerCert {
        let names: Vec<String> = match leaf {
            Leaf::Good | Leaf::Expired => vec!["localhost".into(), "127.0.0.1".into()],
            Leaf::OtherHost => vec!["other.example".into()],
        };
        let mut params = CertificateParams::new(names).expect("server params");
        params.distinguished_name.push(DnType::CommonName, name);
        if let Leaf::Expired = leaf {
            params.not_before = date_time_ymd(2020, 1, 1);
            params.not_after = date_time_ymd(2021, 1, 1);
        }
        let key = KeyPair::generate().expect("a server key");
        let issuer = Issuer::from_params(&self.params, &self.key);
        let cert = params
            .signed_by(&key, &issuer)
            .expect("a server certificate");
        let out = ServerCert {
            cert: dir.join(format!("{name}.crt")),
            key: dir.join(format!("{name}.key")),
        };
        std::fs::write(&out.cert, cert.pem()).expect("write the certificate");
        std::fs::write(&out.key, key.serialize_pem()).expect("write the key");
        out
    }
}

impl ServerCert {
    /// `llmpulse sim` flags that serve https with this certificate.
    pub fn sim_args(&self) -> Vec<String> {
        vec![
            "--tls-cert".into(),
            self.cert.display().to_string(),
            "--tls-key".into(),
            self.key.display().to_string(),
        ]
    }
}
