//! Analysis on several cores with results identical to one core.
//!
//! The expensive, stateless half of the analysis (decoding bodies, extracting consent
//! signals, matching personal data: [`Preparer`]) runs on worker threads; the cheap,
//! stateful half ([`Analyzer::judge`]: consent timeline, wire signals, frequency)
//! runs on the calling thread, which also produces the exchanges (reading the capture,
//! reassembling TCP, parsing HTTP).
//!
//! Exchanges are numbered in batches; batch `i` goes to worker `i mod n`, and results
//! are judged strictly in batch order (waiting for worker `i mod n` when it is behind).
//! So the judge sees exactly the sequence one thread would have seen, whatever the
//! number of workers or their timing: output is byte for byte the same.
//!
//! Memory stays bounded: each worker's input queue holds at most [`QUEUE_BATCHES`]
//! batches, so a producer faster than the workers waits.

use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError};
use std::thread;

use crate::exchange::Exchange;
use crate::rules::{Analyzer, Observation, Prepared, Preparer};

/// Exchanges per batch handed to a worker.
const BATCH: usize = 64;
/// Batches queued per worker before the producer waits.
const QUEUE_BATCHES: usize = 4;

type Batch = Vec<Exchange>;
/// Produces exchanges by calling the sink it is given for each.
pub type Producer<'p> = dyn FnMut(&mut dyn FnMut(Exchange)) + 'p;
type Results = Vec<(Exchange, Prepared)>;

/// Feeds every exchange that `produce` yields through `analyzer`, calling `judged`
/// with each exchange and its observation in production order. `workers` = 0 analyses
/// on the calling thread alone.
pub fn analyze_stream(
    analyzer: &mut Analyzer,
    workers: usize,
    produce: &mut Producer<'_>,
    judged: &mut dyn FnMut(&Exchange, Observation),
) {
    if workers == 0 {
        produce(&mut |x| {
            let obs = analyzer.observe(&x);
            judged(&x, obs);
        });
        return;
    }
    let preparer = analyzer.preparer();
    thread::scope(|scope| {
        let mut inputs: Vec<SyncSender<Batch>> = Vec::with_capacity(workers);
        let mut outputs: Vec<Receiver<Results>> = Vec::with_capacity(workers);
        for _ in 0..workers {
            let (to_worker, worker_in) = mpsc::sync_channel::<Batch>(QUEUE_BATCHES);
            let (worker_out, from_worker) = mpsc::channel::<Results>();
            let preparer: Preparer = preparer.clone();
            scope.spawn(move || {
                for batch in worker_in {
                    let results: Results = batch
                        .into_iter()
                        .map(|x| {
                            let prepared = preparer.prepare(&x);
                            (x, prepared)
                        })
                        .collect();
                    if worker_out.send(results).is_err() {
                        break; // the judge is gone: nothing left to do
                    }
                }
            });
            inputs.push(to_worker);
            outputs.push(from_worker);
        }
        let mut order = Order {
            outputs: &outputs,
            next_judged: 0,
            sent: 0,
        };
        let mut batch: Batch = Vec::with_capacity(BATCH);
        produce(&mut |x| {
            batch.push(x);
            if batch.len() == BATCH {
                let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                order.send(&inputs, full, analyzer, judged);
            }
        });
        if !batch.is_empty() {
            order.send(&inputs, batch, analyzer, judged);
        }
        // No more input: the workers finish their queues and stop.
        drop(inputs);
        order.drain(analyzer, judged, true);
    });
}

/// Which batch is judged next, and how many were handed out.
struct Order<'a> {
    outputs: &'a [Receiver<Results>],
    next_judged: usize,
    sent: usize,
}

impl Order<'_> {
    fn send(
        &mut self,
        inputs: &[SyncSender<Batch>],
        batch: Batch,
        analyzer: &mut Analyzer,
        judged: &mut dyn FnMut(&Exchange, Observation),
    ) {
        let worker = self.sent % inputs.len();
        // A worker that died (it cannot: prepare does not panic on any input) would
        // lose its batch; the judge below then stops waiting for it.
        let _ = inputs[worker].send(batch);
        self.sent += 1;
        self.drain(analyzer, judged, false);
    }

    /// Judges finished batches in order; with `wait`, until every sent batch is done.
    fn drain(
        &mut self,
        analyzer: &mut Analyzer,
        judged: &mut dyn FnMut(&Exchange, Observation),
        wait: bool,
    ) {
        while self.next_judged < self.sent {
            let from = &self.outputs[self.next_judged % self.outputs.len()];
            let results = if wait {
                match from.recv() {
                    Ok(r) => r,
                    Err(_) => return,
                }
            } else {
                match from.try_recv() {
                    Ok(r) => r,
                    Err(TryRecvError::Empty) => return,
                    Err(TryRecvError::Disconnected) => return,
                }
            };
            for (x, prepared) in results {
                let obs = analyzer.judge(&x, prepared);
                judged(&x, obs);
            }
            self.next_judged += 1;
        }
    }
}
