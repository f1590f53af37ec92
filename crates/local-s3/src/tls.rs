//! HTTPS for the endpoint: a throwaway CA generated at start and a leaf certificate it signs
//! for `localhost` and `127.0.0.1`. Clients trust the CA (e.g. through `AWS_CA_BUNDLE`);
//! rustls refuses a self-signed CA certificate used as the server's own, hence two.

use std::io;
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::ServerConfig;
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

/// A server configuration and the PEM of the CA that signed its certificate.
pub struct GeneratedTls {
    pub ca_pem: String,
    pub server_config: Arc<ServerConfig>,
}

pub fn generate() -> io::Result<GeneratedTls> {
    let ca_key = KeyPair::generate().map_err(io::Error::other)?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(io::Error::other)?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "local-s3 throwaway CA");
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca_params.self_signed(&ca_key).map_err(io::Error::other)?;

    let leaf_key = KeyPair::generate().map_err(io::Error::other)?;
    let mut leaf_params =
        CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).map_err(io::Error::other)?;
    leaf_params.distinguished_name.push(DnType::CommonName, "local-s3");
    let issuer = Issuer::new(ca_params, &ca_key);
    let leaf_cert = leaf_params.signed_by(&leaf_key, &issuer).map_err(io::Error::other)?;

    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
    let mut server_config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(io::Error::other)?
        .with_no_client_auth()
        .with_single_cert(vec![leaf_cert.der().clone(), ca_cert.der().clone()], key)
        .map_err(io::Error::other)?;
    // S3 speaks HTTP/1.1, and so do the SDKs towards it.
    server_config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(GeneratedTls {
        ca_pem: ca_cert.pem(),
        server_config: Arc::new(server_config),
    })
}
