//! The DNS relay's listening socket: each answer leaves from the address its query
//! was sent to. A UDP socket bound to a wildcard address (`--dns-listen 0.0.0.0:53`)
//! otherwise answers from whichever of the machine's addresses the routing table
//! prefers for the client; when the query came through an iptables `REDIRECT`, an
//! answer from another address than the one the query was redirected to matches no
//! NAT entry, is not translated back, and reaches the client from an address it
//! never asked, which drops it. (Every multi-homed UDP server meets this; Unbound's
//! `interface-automatic` is the same cure.) On Linux the socket asks for each
//! datagram's destination (`IP_PKTINFO`, `IPV6_RECVPKTINFO`, which also covers IPv4
//! clients of a dual-stack socket as mapped addresses) and gives it as the answer's
//! source in the same control message. Elsewhere, and on a socket bound to one
//! address, plain `recv_from` and `send_to` do.

use std::io;
use std::net::{IpAddr, SocketAddr};

use tokio::net::UdpSocket;

/// A datagram received: its length, its sender, and the address it was sent to
/// when the socket is told it (as the socket's family writes it: an IPv4 client of
/// a dual-stack socket has a mapped address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    pub len: usize,
    pub from: SocketAddr,
    pub to: Option<IpAddr>,
}

/// A UDP socket whose answers leave from where their query arrived.
#[derive(Debug)]
pub struct ReplySocket {
    socket: UdpSocket,
    /// Whether each datagram's destination is asked for (a wildcard address on
    /// Linux).
    pktinfo: bool,
}

impl ReplySocket {
    pub fn new(socket: UdpSocket) -> io::Result<ReplySocket> {
        let local = socket.local_addr()?;
        let pktinfo = cfg!(target_os = "linux") && local.ip().is_unspecified();
        #[cfg(target_os = "linux")]
        if pktinfo {
            linux::ask_destinations(&socket, local.is_ipv6())?;
        }
        Ok(ReplySocket { socket, pktinfo })
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// The next datagram, into `buf` (a longer one is cut to its length).
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<Received> {
        #[cfg(target_os = "linux")]
        if self.pktinfo {
            use std::os::fd::AsRawFd;
            let fd = self.socket.as_raw_fd();
            return self
                .socket
                .async_io(tokio::io::Interest::READABLE, || linux::recv(fd, buf))
                .await;
        }
        let (len, from) = self.socket.recv_from(buf).await?;
        Ok(Received {
            len,
            from,
            to: None,
        })
    }

    /// Sends `bytes` to `to`, from `from` (a [`Received::to`]) when given.
    pub async fn send(&self, bytes: &[u8], to: SocketAddr, from: Option<IpAddr>) -> io::Result<()> {
        #[cfg(target_os = "linux")]
        if let (true, Some(from)) = (self.pktinfo, from) {
            use std::os::fd::AsRawFd;
            let fd = self.socket.as_raw_fd();
            return self
                .socket
                .async_io(tokio::io::Interest::WRITABLE, || {
                    linux::send(fd, bytes, to, from)
                })
                .await;
        }
        let _ = from;
        self.socket.send_to(bytes, to).await.map(|_| ())
    }
}

#[cfg(target_os = "linux")]
mod linux {
    use std::io;
    use std::mem::{size_of, MaybeUninit};
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
    use std::os::fd::{AsRawFd, RawFd};

    use super::Received;

    /// Room for one packet-information control message (IPv6's is the larger),
    /// aligned as `cmsghdr` is.
    #[repr(C, align(8))]
    struct Control([u8; 64]);

    /// Asks the kernel for each datagram's destination address.
    pub fn ask_destinations(socket: &tokio::net::UdpSocket, v6: bool) -> io::Result<()> {
        let (level, name) = if v6 {
            (libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO)
        } else {
            (libc::IPPROTO_IP, libc::IP_PKTINFO)
        };
        let on: libc::c_int = 1;
        // SAFETY: the option value points to a live c_int whose size is given.
        let r = unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                level,
                name,
                (&on as *const libc::c_int).cast(),
                size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if r == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    /// One `recvmsg` on the non-blocking `fd`: the datagram into `buf`, its sender
    /// and the destination its packet-information message gives.
    pub fn recv(fd: RawFd, buf: &mut [u8]) -> io::Result<Received> {
        let mut name = MaybeUninit::<libc::sockaddr_storage>::zeroed();
        let mut control = Control([0; 64]);
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        // SAFETY: all zero is a valid msghdr (null pointers, zero lengths).
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_name = name.as_mut_ptr().cast();
        msg.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.0.as_mut_ptr().cast();
        msg.msg_controllen = control.0.len() as _;
        // SAFETY: every pointer in `msg` points to a live buffer of the length given
        // beside it, and the kernel writes at most that much into each.
        let n = unsafe { libc::recvmsg(fd, &mut msg, 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: zeroed, then written by the kernel: a valid sockaddr_storage.
        let name = unsafe { name.assume_init() };
        let from = socket_addr(&name).ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidData, "a datagram from no IP address")
        })?;
        let mut to = None;
        // SAFETY: `msg` describes `control`, which the kernel filled with
        // `msg_controllen` bytes of control messages; CMSG_FIRSTHDR and CMSG_NXTHDR
        // stay within them (returning null at the end), and a message's data is
        // read only when its length covers the structure read, unaligned.
        unsafe {
            let mut c = libc::CMSG_FIRSTHDR(&msg);
            while !c.is_null() {
                let (level, kind, len) = ((*c).cmsg_level, (*c).cmsg_type, (*c).cmsg_len as usize);
                let data = libc::CMSG_DATA(c);
                match (level, kind) {
                    (libc::IPPROTO_IP, libc::IP_PKTINFO)
                        if len >= libc::CMSG_LEN(size_of::<libc::in_pktinfo>() as u32) as usize =>
                    {
                        let info: libc::in_pktinfo = std::ptr::read_unaligned(data.cast());
                        to = Some(IpAddr::V4(Ipv4Addr::from(u32::from_be(
                            info.ipi_addr.s_addr,
                        ))));
                    }
                    (libc::IPPROTO_IPV6, libc::IPV6_PKTINFO)
                        if len
                            >= libc::CMSG_LEN(size_of::<libc::in6_pktinfo>() as u32) as usize =>
                    {
                        let info: libc::in6_pktinfo = std::ptr::read_unaligned(data.cast());
                        to = Some(IpAddr::V6(Ipv6Addr::from(info.ipi6_addr.s6_addr)));
                    }
                    _ => {}
                }
                c = libc::CMSG_NXTHDR(&msg, c);
            }
        }
        Ok(Received {
            len: n as usize,
            from,
            to,
        })
    }

    /// One `sendmsg` of `bytes` to `to` on the non-blocking `fd`, with `from` as its
    /// source address (a packet-information message of `from`'s family: an IPv6
    /// socket sends to an IPv4 client, mapped, with a mapped source).
    pub fn send(fd: RawFd, bytes: &[u8], to: SocketAddr, from: IpAddr) -> io::Result<()> {
        let name = socket2::SockAddr::from(to);
        let mut control = Control([0; 64]);
        let mut iov = libc::iovec {
            iov_base: bytes.as_ptr() as *mut libc::c_void,
            iov_len: bytes.len(),
        };
        let (level, kind, size) = match from {
            IpAddr::V4(_) => (
                libc::IPPROTO_IP,
                libc::IP_PKTINFO,
                size_of::<libc::in_pktinfo>(),
            ),
            IpAddr::V6(_) => (
                libc::IPPROTO_IPV6,
                libc::IPV6_PKTINFO,
                size_of::<libc::in6_pktinfo>(),
            ),
        };
        // SAFETY: all zero is a valid msghdr (null pointers, zero lengths).
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_name = name.as_ptr() as *mut libc::c_void;
        msg.msg_namelen = name.len();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.0.as_mut_ptr().cast();
        // SAFETY: CMSG_SPACE only computes (at most 40 bytes here, within `control`).
        msg.msg_controllen = unsafe { libc::CMSG_SPACE(size as u32) } as _;
        // SAFETY: `msg_control` has room for one header and `size` bytes of data
        // (CMSG_SPACE above), so CMSG_FIRSTHDR is not null and the writes stay
        // within `control`; the data is written unaligned.
        unsafe {
            let c = libc::CMSG_FIRSTHDR(&msg);
            (*c).cmsg_level = level;
            (*c).cmsg_type = kind;
            (*c).cmsg_len = libc::CMSG_LEN(size as u32) as _;
            let data = libc::CMSG_DATA(c);
            match from {
                IpAddr::V4(a) => std::ptr::write_unaligned(
                    data.cast(),
                    libc::in_pktinfo {
                        ipi_ifindex: 0,
                        ipi_spec_dst: libc::in_addr {
                            s_addr: u32::from(a).to_be(),
                        },
                        ipi_addr: libc::in_addr { s_addr: 0 },
                    },
                ),
                IpAddr::V6(a) => std::ptr::write_unaligned(
                    data.cast(),
                    libc::in6_pktinfo {
                        ipi6_addr: libc::in6_addr {
                            s6_addr: a.octets(),
                        },
                        ipi6_ifindex: 0,
                    },
                ),
            }
        }
        // SAFETY: every pointer in `msg` points to a live buffer of the length given
        // beside it; the kernel only reads them.
        let n = unsafe { libc::sendmsg(fd, &msg, 0) };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }

    /// The IP socket address in `storage`, by its family.
    fn socket_addr(storage: &libc::sockaddr_storage) -> Option<SocketAddr> {
        match i32::from(storage.ss_family) {
            libc::AF_INET => {
                // SAFETY: an AF_INET address is a sockaddr_in, which the storage
                // is large and aligned enough for.
                let a = unsafe {
                    &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>()
                };
                let ip = Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
                Some(SocketAddr::from((ip, u16::from_be(a.sin_port))))
            }
            libc::AF_INET6 => {
                // SAFETY: as above, a sockaddr_in6.
                let a = unsafe {
                    &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>()
                };
                let ip = Ipv6Addr::from(a.sin6_addr.s6_addr);
                Some(SocketAddr::V6(std::net::SocketAddrV6::new(
                    ip,
                    u16::from_be(a.sin6_port),
                    a.sin6_flowinfo,
                    a.sin6_scope_id,
                )))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    /// Sends `ping` from a client on `client` to `at`, answers it through `socket`
    /// from where it arrived, and returns what the socket was told and where the
    /// client saw the answer come from.
    fn round_trip(
        rt: &tokio::runtime::Runtime,
        socket: &ReplySocket,
        client: &str,
        at: SocketAddr,
    ) -> (Received, SocketAddr) {
        let c = std::net::UdpSocket::bind(client).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        c.send_to(b"ping", at).unwrap();
        let got = rt.block_on(async {
            let mut buf = [0u8; 16];
            let got = socket.recv(&mut buf).await.unwrap();
            assert_eq!(&buf[..got.len], b"ping");
            socket.send(b"pong", got.from, got.to).await.unwrap();
            got
        });
        let mut buf = [0u8; 16];
        let (n, from) = c.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"pong");
        (got, from)
    }

    #[test]
    fn a_wildcard_socket_answers_from_the_address_asked() {
        let rt = runtime();
        let socket = rt.block_on(UdpSocket::bind("0.0.0.0:0")).unwrap();
        let socket = ReplySocket::new(socket).unwrap();
        let port = socket.local_addr().unwrap().port();
        // 127.0.0.2 is this machine's too, and not the address the routing table
        // would choose to answer 127.0.0.1 from.
        let asked = SocketAddr::from(([127, 0, 0, 2], port));
        let (got, from) = round_trip(&rt, &socket, "127.0.0.1:0", asked);
        if cfg!(target_os = "linux") {
            assert_eq!(got.to, Some(asked.ip()));
        }
        assert_eq!(from, asked);
    }

    #[test]
    fn a_dual_stack_socket_answers_ipv4_clients_from_the_address_asked() {
        let rt = runtime();
        let Ok(socket) = rt.block_on(UdpSocket::bind("[::]:0")) else {
            return; // no IPv6 here
        };
        let socket = ReplySocket::new(socket).unwrap();
        let port = socket.local_addr().unwrap().port();
        let asked = SocketAddr::from(([127, 0, 0, 2], port));
        let (got, from) = round_trip(&rt, &socket, "127.0.0.1:0", asked);
        if cfg!(target_os = "linux") {
            assert_eq!(got.to, Some("::ffff:127.0.0.2".parse().unwrap()));
        }
        assert_eq!(from, asked);
    }

    #[test]
    fn a_socket_on_one_address_answers_from_it() {
        let rt = runtime();
        let socket = rt.block_on(UdpSocket::bind("127.0.0.1:0")).unwrap();
        let socket = ReplySocket::new(socket).unwrap();
        let at = socket.local_addr().unwrap();
        let (got, from) = round_trip(&rt, &socket, "127.0.0.1:0", at);
        assert_eq!((got.to, from), (None, at));
    }
}
