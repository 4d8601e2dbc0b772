//! What both servers do around their accept loops: the task that serves and
//! the signal that stops it ([`Serving`]), and the tokio runtime that
//! `--workers` asks for ([`runtime`], [`background_runtime`]).

use std::future::Future;
use std::io;
use std::num::NonZeroUsize;

use tokio::runtime::{Builder, Runtime};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// An accept loop running on a tokio runtime. [`Serving::shutdown`] stops it
/// gracefully (the loop sees its stop signal and drains); dropping it aborts
/// the task, so a server handle that goes out of scope never leaves a
/// listener behind.
#[derive(Debug)]
pub struct Serving {
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Serving {
    /// Spawns `serve` on the current runtime, handing it the receiver that
    /// fires when [`Serving::shutdown`] is called.
    pub fn spawn<F, Fut>(serve: F) -> Serving
    where
        F: FnOnce(oneshot::Receiver<()>) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let (stop, stop_rx) = oneshot::channel();
        Serving {
            stop: Some(stop),
            task: Some(tokio::spawn(serve(stop_rx))),
        }
    }

    /// Signals the loop to stop and waits for it to finish.
    pub async fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// The runtime a server binary runs on: one thread (current-thread, no
/// hand-offs between threads) for `--workers 1`, `n` worker threads for
/// `--workers n`, and tokio's default of one per core without the flag.
pub fn runtime(workers: Option<NonZeroUsize>) -> io::Result<Runtime> {
    match workers.map(NonZeroUsize::get) {
        Some(1) => Builder::new_current_thread().enable_all().build(),
        Some(n) => Builder::new_multi_thread()
            .worker_threads(n)
            .enable_all()
            .build(),
        None => Builder::new_multi_thread().enable_all().build(),
    }
}

/// A runtime whose `threads` threads (at least one) run in the background,
/// named `name`, for a server embedded in another program: its tasks run
/// without anyone calling `block_on`.
pub fn background_runtime(name: &str, threads: usize) -> io::Result<Runtime> {
    Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .thread_name(name)
        .enable_all()
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shutdown_delivers_the_stop_signal_and_waits() {
        let rt = runtime(NonZeroUsize::new(1)).unwrap();
        rt.block_on(async {
            let (seen_tx, seen_rx) = oneshot::channel();
            let mut s = Serving::spawn(|stop| async move {
                let _ = stop.await;
                let _ = seen_tx.send(());
            });
            s.shutdown().await;
            assert!(seen_rx.await.is_ok(), "the loop saw the stop signal");
        });
    }

    #[test]
    fn drop_aborts_the_loop() {
        let rt = background_runtime("t", 1).unwrap();
        rt.block_on(async {
            let (tx, rx) = oneshot::channel::<()>();
            let s = Serving::spawn(|_stop| async move {
                let _keep = tx;
                std::future::pending::<()>().await;
            });
            drop(s);
            // The aborted task drops what it held: the sender closes.
            assert!(rx.await.is_err());
        });
    }
}
