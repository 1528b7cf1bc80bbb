//! The freeze fault: a cluster that accepts connections and answers nothing, as an API server
//! stopped with SIGSTOP or behind a firewall that drops packets looks to its clients.
//!
//! Every connection's socket goes through a [`Frozen`] wrapper that neither reads nor writes
//! while the gate is shut: TLS handshakes stall, requests are not read (so nothing they would
//! change happens), responses and open watches fall silent. Nothing is closed and nothing is
//! lost: when the gate opens again everything resumes where it stopped, as after SIGCONT.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Waker};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Shut while the cluster is frozen; wakes every stalled socket when it opens.
#[derive(Debug, Default)]
pub struct FreezeGate {
    shut: AtomicBool,
    waiting: Mutex<Vec<Waker>>,
}

impl FreezeGate {
    pub fn set(&self, frozen: bool) {
        self.shut.store(frozen, Ordering::SeqCst);
        if !frozen {
            let wakers = std::mem::take(&mut *self.lock());
            for w in wakers {
                w.wake();
            }
        }
    }

    pub fn is_frozen(&self) -> bool {
        self.shut.load(Ordering::SeqCst)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Waker>> {
        self.waiting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Ready when open; else the task is woken when it opens.
    fn poll_open(&self, cx: &mut Context<'_>) -> Poll<()> {
        if !self.is_frozen() {
            return Poll::Ready(());
        }
        {
            let mut waiting = self.lock();
            if !waiting.iter().any(|w| w.will_wake(cx.waker())) {
                waiting.push(cx.waker().clone());
            }
        }
        // Opened between the first look and the registration: do not sleep through it.
        if self.is_frozen() {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    }
}

/// A socket that stalls both ways while its cluster is frozen.
pub struct Frozen<S> {
    inner: S,
    gate: Arc<FreezeGate>,
}

impl<S> Frozen<S> {
    pub fn new(inner: S, gate: Arc<FreezeGate>) -> Self {
        Self { inner, gate }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Frozen<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        std::task::ready!(self.gate.poll_open(cx));
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Frozen<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        std::task::ready!(self.gate.poll_open(cx));
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        std::task::ready!(self.gate.poll_open(cx));
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        std::task::ready!(self.gate.poll_open(cx));
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
