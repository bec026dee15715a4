//! `LISTEN` on a connection of its own: a queued task wakes every runner's dispatcher, stored
//! events wake every runner's followers. Reconnects after a broken connection; followers and
//! the dispatcher also re-read on a timer, so a lost notification only delays them.

use std::time::Duration;

use futures_util::StreamExt;
use tokio_postgres::{AsyncMessage, NoTls};
use tokio_util::sync::CancellationToken;

/// Notified (payload: the task id) when a task is queued or re-queued.
pub const CHANNEL_QUEUE: &str = "airlock_queue";
/// Notified (payload: the task id) when a task's events are stored.
pub const CHANNEL_EVENTS: &str = "airlock_events";

/// Notifications waiting to be handled; more are dropped (each is only a wake-up, and the
/// dispatcher and followers re-read on a timer), so a burst never grows the daemon's memory.
const PENDING: usize = 1024;

/// Wait between reconnects.
const RETRY: Duration = Duration::from_secs(1);

/// Until `stop`, call `on(channel, payload)` for every notification.
pub async fn listen<F>(config: tokio_postgres::Config, on: F, stop: CancellationToken)
where
    F: Fn(&str, &str) + Send + Sync + 'static,
{
    while !stop.is_cancelled() {
        tokio::select! {
            _ = stop.cancelled() => return,
            r = once(&config, &on) => if let Err(e) = r {
                tracing::warn!(error = %e, "queue database: LISTEN connection lost; reconnecting");
            },
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(RETRY) => {}
        }
    }
}

async fn once<F>(config: &tokio_postgres::Config, on: &F) -> Result<(), tokio_postgres::Error>
where
    F: Fn(&str, &str) + Send + Sync,
{
    let (client, mut conn) = config.connect(NoTls).await?;
    let (tx, mut rx) = tokio::sync::mpsc::channel(PENDING);
    // The connection is driven here; notifications come back over the channel, and the
    // channel closes when the connection ends.
    let driver = tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| conn.poll_message(cx));
        while let Some(m) = messages.next().await {
            match m {
                Ok(AsyncMessage::Notification(n)) => {
                    let _ = tx.try_send(Ok((n.channel().to_string(), n.payload().to_string())));
                }
                Ok(_) => {}
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                    return;
                }
            }
        }
    });
    let listen = format!("LISTEN {CHANNEL_QUEUE}; LISTEN {CHANNEL_EVENTS}");
    if let Err(e) = client.batch_execute(&listen).await {
        driver.abort();
        return Err(e);
    }
    // Anything queued before LISTEN took effect: look once.
    on(CHANNEL_QUEUE, "");
    while let Some(m) = rx.recv().await {
        let (channel, payload) = m?;
        on(&channel, &payload);
    }
    drop(client);
    Ok(())
}
