//! [`Buffered`]: the random values rustls draws for itself on the proxy's TLS
//! connections (the server random, and per TLS 1.3 ticket an id, a nonce and an age
//! offset: seven draws of 4–32 bytes per intercepted handshake), served from a
//! per-thread buffer refilled from aws-lc-rs' generator [`BUFFER`] bytes at a time.
//! Every call into that generator mixes in RDRAND and runs its DRBG's setup, so seven
//! small calls per handshake cost more than the bytes (issue 4, new intercepted
//! connections per second); one call per about 25 handshakes costs next to nothing.
//! The bytes are the generator's output either way; each is handed out once and
//! wiped from the buffer as it is.
//!
//! Key generation and signatures are untouched: aws-lc draws their randomness itself.

use std::cell::RefCell;

use rustls::crypto::{GetRandomFailed, SecureRandom};

/// Bytes drawn from the generator at once.
const BUFFER: usize = 4096;
/// Draws longer than this go to the generator directly.
const MAX_BUFFERED: usize = 256;

/// rustls' [`SecureRandom`], served from a buffer per thread that `inner` refills.
/// The buffer belongs to the thread, not to the value: the proxy has one.
#[derive(Debug)]
pub struct Buffered {
    inner: &'static dyn SecureRandom,
}

impl Buffered {
    /// Random bytes from `inner`, drawn [`BUFFER`] at a time.
    pub fn new(inner: &'static dyn SecureRandom) -> Buffered {
        Buffered { inner }
    }
}

/// One thread's random bytes not handed out yet: `bytes[pos..]`.
struct Pool {
    bytes: Box<[u8; BUFFER]>,
    pos: usize,
}

thread_local! {
    static POOL: RefCell<Pool> = RefCell::new(Pool {
        bytes: Box::new([0; BUFFER]),
        // Empty: the first draw fills it.
        pos: BUFFER,
    });
}

impl SecureRandom for Buffered {
    fn fill(&self, out: &mut [u8]) -> Result<(), GetRandomFailed> {
        if out.len() > MAX_BUFFERED {
            return self.inner.fill(out);
        }
        POOL.with(|pool| {
            let mut pool = pool.borrow_mut();
            let pool = &mut *pool;
            if BUFFER - pool.pos < out.len() {
                self.inner.fill(&mut pool.bytes[..])?;
                pool.pos = 0;
            }
            let end = pool.pos + out.len();
            let taken = pool.bytes.get_mut(pool.pos..end).ok_or(GetRandomFailed)?;
            out.copy_from_slice(taken);
            taken.fill(0);
            pool.pos = end;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

    use super::*;

    /// A generator whose output is the byte sequence 0, 1, 2, … (mod 251) over all
    /// its calls, counting them.
    #[derive(Debug, Default)]
    struct Counting {
        next: AtomicU64,
        calls: AtomicUsize,
    }

    impl SecureRandom for Counting {
        fn fill(&self, buf: &mut [u8]) -> Result<(), GetRandomFailed> {
            self.calls.fetch_add(1, Ordering::Relaxed);
            for b in buf {
                *b = (self.next.fetch_add(1, Ordering::Relaxed) % 251) as u8;
            }
            Ok(())
        }
    }

    /// Runs `f` on a thread of its own: a fresh pool.
    fn on_fresh_thread(f: impl FnOnce() + Send + 'static) {
        std::thread::spawn(f).join().unwrap();
    }

    #[test]
    fn draws_hand_out_the_generators_bytes_in_order_once_each() {
        on_fresh_thread(|| {
            let source: &'static Counting = Box::leak(Box::default());
            let r = Buffered::new(source);
            // Draw sizes as rustls asks (32, 4, 32, …) and others, past several
            // refills; the model is the generator's sequence, skipping what was left
            // in the buffer when a draw did not fit.
            let sizes = [32, 4, 32, 32, 4, 32, 1, 0, 255, 256, 17];
            let mut model_pos = 0u64; // index into the generator's sequence
            let mut buffered_left = 0u64;
            let mut refills = 0;
            for i in 0..2000 {
                let n = sizes[i % sizes.len()];
                let mut out = vec![0u8; n];
                r.fill(&mut out).unwrap();
                if (n as u64) > buffered_left {
                    // A refill: the rest of the old buffer is dropped.
                    model_pos += buffered_left;
                    buffered_left = BUFFER as u64;
                    refills += 1;
                }
                let want: Vec<u8> = (model_pos..model_pos + n as u64)
                    .map(|k| (k % 251) as u8)
                    .collect();
                assert_eq!(out, want, "draw {i} of {n} bytes");
                model_pos += n as u64;
                buffered_left -= n as u64;
            }
            assert_eq!(
                source.calls.load(Ordering::Relaxed),
                refills,
                "one generator call per buffer"
            );
        });
    }

    #[test]
    fn long_draws_go_to_the_generator_and_handed_out_bytes_are_wiped() {
        on_fresh_thread(|| {
            let source: &'static Counting = Box::leak(Box::default());
            let r = Buffered::new(source);
            let mut long = vec![0u8; MAX_BUFFERED + 1];
            r.fill(&mut long).unwrap();
            assert_eq!(long.first(), Some(&0));
            assert_eq!(source.calls.load(Ordering::Relaxed), 1);
            let mut a = [0u8; 32];
            r.fill(&mut a).unwrap();
            // The buffer came after the long draw.
            assert_eq!(a[0], ((MAX_BUFFERED + 1) % 251) as u8);
            POOL.with(|p| {
                let p = p.borrow();
                assert_eq!(p.pos, 32);
                assert!(p.bytes[..32].iter().all(|&b| b == 0), "wiped");
                assert!(p.bytes[32..].iter().any(|&b| b != 0), "the rest kept");
            });
        });
    }

    #[test]
    fn a_failing_generator_fails_the_draw() {
        #[derive(Debug)]
        struct Broken;
        impl SecureRandom for Broken {
            fn fill(&self, _: &mut [u8]) -> Result<(), GetRandomFailed> {
                Err(GetRandomFailed)
            }
        }
        on_fresh_thread(|| {
            let r = Buffered::new(&Broken);
            assert!(r.fill(&mut [0u8; 32]).is_err());
            assert!(r.fill(&mut [0u8; 1000]).is_err());
        });
    }
}
