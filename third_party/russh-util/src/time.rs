#[cfg(not(target_arch = "wasm32"))]
pub use std::time::Instant;

#[cfg(target_arch = "wasm32")]
pub use wasm::Instant;

#[cfg(target_arch = "wasm32")]
mod wasm {
    #[derive(Debug, Clone, Copy)]
    pub struct Instant {
        inner: chrono::DateTime<chrono::Utc>,
    }

    impl Instant {
        pub fn now() -> Self {
            Instant {
                inner: chrono::Utc::now(),
            }
        }

        /// Zero when `earlier` is later than `self`, as `std::time::Instant::duration_since`
        /// is: this clock is the wall clock, which steps back (an NTP correction, a device
        /// waking from sleep), and a panic here would end every session of the module.
        pub fn duration_since(&self, earlier: Instant) -> std::time::Duration {
            (self.inner - earlier.inner).to_std().unwrap_or_default()
        }
    }
}
