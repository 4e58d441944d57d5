//! The in-process bus: a tokio broadcast channel. Notices are shared as `Arc`s, so a
//! notice is built once however many subscribers there are.

use std::sync::Arc;

use tokio::sync::broadcast;

use super::{Bus, Notice};

pub struct LocalBus {
    sender: broadcast::Sender<Arc<Notice>>,
}

impl LocalBus {
    /// `capacity` notices may wait for the slowest subscriber before it lags.
    pub fn new(capacity: usize) -> Self {
        let (sender, _) = broadcast::channel(capacity);
        Self { sender }
    }
}

impl Default for LocalBus {
    fn default() -> Self {
        Self::new(65_536)
    }
}

impl Bus for LocalBus {
    fn publish(&self, notice: Notice) {
        metrics::counter!("banter_bus_published_total").increment(1);
        // No subscriber (no gateway yet, or a CLI process) is not an error.
        let _ = self.sender.send(Arc::new(notice));
    }

    fn subscribe(&self) -> broadcast::Receiver<Arc<Notice>> {
        self.sender.subscribe()
    }

    fn is_connected(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_subscriber_gets_each_notice_in_order() {
        let bus = LocalBus::new(16);
        let mut a = bus.subscribe();
        let mut b = bus.subscribe();
        for seq in 1..=3 {
            bus.publish(Notice::ReadMarker {
                user_id: 1,
                room_id: 2,
                seq,
            });
        }
        for receiver in [&mut a, &mut b] {
            for seq in 1..=3 {
                let notice = receiver.recv().await.unwrap();
                assert_eq!(
                    *notice,
                    Notice::ReadMarker {
                        user_id: 1,
                        room_id: 2,
                        seq
                    }
                );
            }
        }
    }
}
