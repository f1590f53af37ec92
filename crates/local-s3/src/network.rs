//! A model of the network between a Lambda function and S3, applied by the endpoint: a
//! loopback connection costs nothing, a real one does not.

use std::time::Duration;

/// Delays the endpoint adds. All zero (the default) serves at loopback speed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetworkModel {
    /// One network round trip between client and endpoint.
    pub rtt: Duration,
    /// The time S3 takes to answer once a request has arrived.
    pub service_time: Duration,
    /// Round trips a new connection costs before its first request: 1 for TCP, plus 1 for a
    /// TLS 1.3 handshake (2 for TLS 1.2).
    pub handshake_rtts: u32,
}

/// A figure of the model that is negative or not a number.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
#[error("{name} must be a non-negative number of milliseconds, not {ms}")]
pub struct InvalidDelay {
    pub name: &'static str,
    pub ms: f64,
}

impl NetworkModel {
    /// A model from millisecond figures, as command-line flags give them; names the figure
    /// that is negative or not a number.
    pub fn from_millis(rtt_ms: f64, service_ms: f64, handshake_rtts: u32) -> Result<Self, InvalidDelay> {
        let duration =
            |name: &'static str, ms: f64| Duration::try_from_secs_f64(ms / 1e3).map_err(|_| InvalidDelay { name, ms });
        Ok(NetworkModel {
            rtt: duration("the round trip", rtt_ms)?,
            service_time: duration("the service time", service_ms)?,
            handshake_rtts,
        })
    }

    /// Added to every request: its round trip and S3's time to answer it.
    pub fn request_delay(&self) -> Duration {
        self.rtt + self.service_time
    }

    /// Added once per connection, before its first request is read.
    pub fn connection_delay(&self) -> Duration {
        self.rtt * self.handshake_rtts
    }
}

/// Sleeps for `delay`, skipping the timer entirely when there is nothing to wait for.
pub(crate) async fn wait(delay: Duration) {
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tls_connection_costs_its_handshake_round_trips() {
        let model = NetworkModel {
            rtt: Duration::from_millis(20),
            service_time: Duration::from_millis(15),
            handshake_rtts: 2,
        };
        assert_eq!(model.request_delay(), Duration::from_millis(35));
        assert_eq!(model.connection_delay(), Duration::from_millis(40));
    }

    #[test]
    fn millisecond_figures_convert_and_negative_ones_are_refused() {
        let model = NetworkModel::from_millis(2.5, 15.0, 2).unwrap();
        assert_eq!(model.rtt, Duration::from_micros(2500));
        assert_eq!(model.service_time, Duration::from_millis(15));
        let err = NetworkModel::from_millis(-1.0, 15.0, 2).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the round trip must be a non-negative number of milliseconds, not -1"
        );
        assert!(
            NetworkModel::from_millis(1.0, f64::NAN, 2)
                .unwrap_err()
                .to_string()
                .starts_with("the service time")
        );
    }
}
