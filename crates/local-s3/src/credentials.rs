//! The one key pair a local-s3 accepts, which its SigV4 check verifies every request against.

/// The key pair the endpoint verifies SigV4 signatures against. Local and fake: they open
/// nothing but this endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl Default for Credentials {
    fn default() -> Self {
        Credentials {
            access_key_id: "LOCALS3ACCESSKEY".to_owned(),
            secret_access_key: "local-s3-secret-key-not-an-aws-secret".to_owned(),
        }
    }
}
