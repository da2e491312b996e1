//! The RTP/RTCP port pool: even RTP port + the odd RTCP port above it, from the configured
//! range, each pair bind-checked when leased and returned when the [`PortLease`] drops (on
//! every exit path of a call, panics included).
//!
//! Owns port bookkeeping and the two bound sockets; must not send or receive on them.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::{Arc, Mutex, MutexGuard};

#[derive(Debug, thiserror::Error)]
pub enum PortError {
    #[error(
        "no free RTP port pair in {bind}:{min}-{max} ({leased} leased, the rest are taken by other programs): widen media.rtp_port_min/max or end idle calls"
    )]
    Exhausted {
        bind: IpAddr,
        min: u16,
        max: u16,
        leased: usize,
    },
    #[error("RTP port range {min}-{max} is unusable: it needs an even start below its end")]
    BadRange { min: u16, max: u16 },
}

#[derive(Debug)]
struct PoolState {
    leased: BTreeSet<u16>,
    /// Index of the pair where the next search starts, so freed ports cool down before
    /// reuse (late packets of the previous call then hit a closed port, not the next call).
    cursor: u16,
}

/// Shared handle; clone it freely.
#[derive(Debug, Clone)]
pub struct PortPool {
    bind: IpAddr,
    min: u16,
    max: u16,
    state: Arc<Mutex<PoolState>>,
}

/// A leased RTP/RTCP pair with its bound sockets; the pair goes back to the pool on drop.
/// The sockets can be taken out for the media session ([`PortLease::take_sockets`]); the pair
/// stays leased until the lease is dropped, so drop the sockets first.
#[derive(Debug)]
pub struct PortLease {
    /// (RTP, RTCP) until taken.
    sockets: Option<(UdpSocket, UdpSocket)>,
    rtp_port: u16,
    pool: PortPool,
}

impl PortPool {
    /// A pool over the even ports `min..max` (each with `port + 1` for RTCP, `<= max`).
    pub fn new(bind: IpAddr, min: u16, max: u16) -> Result<PortPool, PortError> {
        if min % 2 == 1 || max <= min {
            return Err(PortError::BadRange { min, max });
        }
        Ok(PortPool {
            bind,
            min,
            max,
            state: Arc::new(Mutex::new(PoolState {
                leased: BTreeSet::new(),
                cursor: 0,
            })),
        })
    }

    pub fn from_config(config: &super::config::MediaConfig) -> Result<PortPool, PortError> {
        PortPool::new(
            config.bind_address,
            config.rtp_port_min,
            config.rtp_port_max,
        )
    }

    fn lock(&self) -> MutexGuard<'_, PoolState> {
        // Bookkeeping stays consistent even if a holder panicked: every update is one insert
        // or remove.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Leases the next free pair whose two ports can both be bound.
    pub fn lease(&self) -> Result<PortLease, PortError> {
        let mut state = self.lock();
        let pairs = (self.max - self.min).div_ceil(2);
        for offset in 0..pairs {
            let index = (state.cursor + offset) % pairs;
            let candidate = self.min + 2 * index;
            if state.leased.contains(&candidate) {
                continue;
            }
            let Ok(rtp) = UdpSocket::bind(SocketAddr::new(self.bind, candidate)) else {
                continue;
            };
            let Ok(rtcp) = UdpSocket::bind(SocketAddr::new(self.bind, candidate + 1)) else {
                continue;
            };
            state.leased.insert(candidate);
            state.cursor = (index + 1) % pairs;
            return Ok(PortLease {
                sockets: Some((rtp, rtcp)),
                rtp_port: candidate,
                pool: self.clone(),
            });
        }
        Err(PortError::Exhausted {
            bind: self.bind,
            min: self.min,
            max: self.max,
            leased: state.leased.len(),
        })
    }

    /// How many pairs are leased right now.
    pub fn live_count(&self) -> usize {
        self.lock().leased.len()
    }
}

impl PortLease {
    pub fn rtp_port(&self) -> u16 {
        self.rtp_port
    }

    /// The local RTP address to announce in SDP.
    pub fn rtp_addr(&self) -> SocketAddr {
        SocketAddr::new(self.pool.bind, self.rtp_port)
    }

    /// Both sockets (RTP, RTCP), once: the lease still holds the port numbers. Taking them
    /// instead of cloning keeps a call at two descriptors.
    pub fn take_sockets(&mut self) -> Option<(UdpSocket, UdpSocket)> {
        self.sockets.take()
    }
}

impl Drop for PortLease {
    fn drop(&mut self) {
        self.pool.lock().leased.remove(&self.rtp_port);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOOPBACK: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    /// A free even port range found by binding an ephemeral socket.
    fn free_range(pairs: u16) -> (u16, u16) {
        for _ in 0..50 {
            let probe = UdpSocket::bind((LOOPBACK, 0)).unwrap();
            let port = probe.local_addr().unwrap().port() & !1;
            drop(probe);
            if port > 1024 && port < 60000 {
                let max = port + 2 * pairs - 1;
                let all_free = (port..=max).all(|p| UdpSocket::bind((LOOPBACK, p)).is_ok());
                if all_free {
                    return (port, max);
                }
            }
        }
        panic!("no free port range on loopback");
    }

    #[test]
    fn leases_even_pairs_and_returns_them_on_drop() {
        let (min, max) = free_range(3);
        let pool = PortPool::new(LOOPBACK, min, max).unwrap();
        let mut a = pool.lease().unwrap();
        let b = pool.lease().unwrap();
        assert_eq!(a.rtp_port() % 2, 0);
        let (rtp, rtcp) = a.take_sockets().unwrap();
        assert!(a.take_sockets().is_none(), "taken once");
        assert_eq!(rtp.local_addr().unwrap(), a.rtp_addr());
        assert_eq!(rtcp.local_addr().unwrap().port(), a.rtp_port() + 1);
        drop((rtp, rtcp));
        assert_ne!(a.rtp_port(), b.rtp_port());
        assert_eq!(pool.live_count(), 2);
        drop(a);
        assert_eq!(pool.live_count(), 1);
        drop(b);
        assert_eq!(pool.live_count(), 0);
    }

    #[test]
    fn exhaustion_is_a_clear_error_and_busy_ports_are_skipped() {
        let (min, max) = free_range(2);
        // Another program holds the first RTCP port: that pair is unusable.
        let squatter = UdpSocket::bind((LOOPBACK, min + 1)).unwrap();
        let pool = PortPool::new(LOOPBACK, min, max).unwrap();
        let lease = pool.lease().unwrap();
        assert_eq!(lease.rtp_port(), min + 2);
        let error = pool.lease().unwrap_err();
        assert!(
            error.to_string().contains("widen media.rtp_port_min/max"),
            "{error}"
        );
        drop(squatter);
        let second = pool.lease().unwrap();
        assert_eq!(second.rtp_port(), min);
    }

    #[test]
    fn lease_is_returned_when_a_holder_panics() {
        let (min, max) = free_range(1);
        let pool = PortPool::new(LOOPBACK, min, max).unwrap();
        let pool_in_thread = pool.clone();
        let result = std::thread::spawn(move || {
            let _lease = pool_in_thread.lease().unwrap();
            panic!("call task failed");
        })
        .join();
        assert!(result.is_err());
        assert_eq!(pool.live_count(), 0);
        assert!(pool.lease().is_ok());
    }

    #[test]
    fn odd_start_is_rejected() {
        assert!(matches!(
            PortPool::new(LOOPBACK, 30001, 30010),
            Err(PortError::BadRange { .. })
        ));
    }
}
