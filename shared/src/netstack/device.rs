//! The tunnel as a smoltcp `Device`: two bounded packet queues and a buffer pool.
//!
//! Packets received from the tunnel wait in `rx` until the interface polls them; packets the
//! interface emits wait in `tx` until the driver takes them. Buffers are recycled through
//! pools, so a steady flow allocates nothing per packet.

use std::collections::VecDeque;

use smoltcp::phy::{self, Checksum, ChecksumCapabilities, DeviceCapabilities, Medium};
use smoltcp::time::Instant;

/// Spare buffers kept per direction; beyond this, returned buffers are freed.
const POOL_LIMIT: usize = 256;
/// Buffers larger than this are pooled apart, and only [`LARGE_POOL_LIMIT`] of them: the relay
/// may hand over TCP super-packets of up to 64 KiB and take segments as large, and a pool of
/// 256 of those would hold megabytes for good.
const POOLED_CAPACITY: usize = 4096;
/// Spare large transmit buffers kept (a burst of 64 KiB segments reuses them).
const LARGE_POOL_LIMIT: usize = 16;

/// The in-memory link between the interface and the tunnel.
#[derive(Debug)]
pub(crate) struct TunnelDevice {
    rx: VecDeque<Vec<u8>>,
    tx: VecDeque<Vec<u8>>,
    rx_pool: Vec<Vec<u8>>,
    tx_pool: Vec<Vec<u8>>,
    /// Spare transmit buffers of more than [`POOLED_CAPACITY`] bytes.
    tx_pool_large: Vec<Vec<u8>>,
    rx_limit: usize,
    tx_limit: usize,
    /// The capacity of a new small transmit buffer: the MTU, or less.
    small_capacity: usize,
    /// The largest packet the interface may emit (TCP may exceed the MTU, see
    /// [`super::NetConfig::max_tcp_packet`]).
    max_packet: usize,
    /// The interface wanted to send but the transmit queue was full.
    tx_blocked: bool,
    /// Outgoing TCP packets go without their checksum (the relay has it computed).
    tcp_checksum_left_out: bool,
    /// Incoming TCP packets are taken without checking their checksum (the relay vouches).
    tcp_checksum_checked: bool,
}

impl TunnelDevice {
    /// The device for `config`: its MTU, largest TCP packet, queue bounds and which TCP
    /// checksums it leaves to the relay (the interface reads that once, when built).
    pub(crate) fn new(config: &super::NetConfig) -> Self {
        let (mtu, rx_limit, tx_limit) = (config.mtu, config.queue_packets, config.queue_packets);
        Self {
            rx: VecDeque::with_capacity(rx_limit),
            tx: VecDeque::with_capacity(tx_limit),
            rx_pool: Vec::new(),
            tx_pool: Vec::new(),
            tx_pool_large: Vec::new(),
            rx_limit,
            tx_limit,
            small_capacity: mtu.min(POOLED_CAPACITY),
            max_packet: config.max_tcp_packet.max(mtu),
            tx_blocked: false,
            tcp_checksum_left_out: config.tcp_checksum_offload,
            tcp_checksum_checked: config.tcp_checksum_checked,
        }
    }

    /// Queues a copy of `packet` for the interface; false when the queue is full.
    pub(crate) fn push_rx(&mut self, packet: &[u8]) -> bool {
        if self.rx.len() >= self.rx_limit {
            return false;
        }
        let mut buf = self.rx_pool.pop().unwrap_or_default();
        buf.clear();
        buf.extend_from_slice(packet);
        self.rx.push_back(buf);
        true
    }

    pub(crate) fn rx_pending(&self) -> bool {
        !self.rx.is_empty()
    }

    pub(crate) fn pop_tx(&mut self) -> Option<Vec<u8>> {
        self.tx.pop_front()
    }

    pub(crate) fn tx_len(&self) -> usize {
        self.tx.len()
    }

    pub(crate) fn tx_full(&self) -> bool {
        self.tx.len() >= self.tx_limit
    }

    /// Whether the last poll stopped early because the transmit queue was full.
    pub(crate) fn take_tx_blocked(&mut self) -> bool {
        std::mem::take(&mut self.tx_blocked)
    }

    pub(crate) fn mark_tx_blocked(&mut self) {
        self.tx_blocked = true;
    }

    pub(crate) fn tx_blocked(&self) -> bool {
        self.tx_blocked
    }

    /// Takes back a buffer for reuse by later outgoing packets.
    pub(crate) fn recycle_tx(&mut self, buf: Vec<u8>) {
        let (pool, limit) = if buf.capacity() > POOLED_CAPACITY {
            (&mut self.tx_pool_large, LARGE_POOL_LIMIT)
        } else {
            (&mut self.tx_pool, POOL_LIMIT)
        };
        if pool.len() < limit {
            pool.push(buf);
        }
    }
}

impl phy::Device for TunnelDevice {
    type RxToken<'a> = RxToken<'a>;
    type TxToken<'a> = TxToken<'a>;

    fn receive(&mut self, _timestamp: Instant) -> Option<(RxToken<'_>, TxToken<'_>)> {
        // Replies made while receiving (RSTs, echo replies) may go past the transmit limit by
        // one receive queue's worth. Beyond that the received packets wait (and the receive
        // queue drops what comes next) until the driver drains: a peer that sends requests
        // while the driver cannot send (its socket backed up) gets no growing pile of answers.
        if self.tx.len() >= self.tx_limit + self.rx_limit {
            self.tx_blocked = true;
            return None;
        }
        let buf = self.rx.pop_front()?;
        Some((
            RxToken { buf, pool: &mut self.rx_pool },
            TxToken::new(&mut self.tx, &mut self.tx_pool, &mut self.tx_pool_large, self.small_capacity),
        ))
    }

    fn transmit(&mut self, _timestamp: Instant) -> Option<TxToken<'_>> {
        if self.tx.len() >= self.tx_limit {
            self.tx_blocked = true;
            return None;
        }
        Some(TxToken::new(&mut self.tx, &mut self.tx_pool, &mut self.tx_pool_large, self.small_capacity))
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ip;
        caps.max_transmission_unit = self.max_packet;
        caps.max_burst_size = None;
        caps.checksum = ChecksumCapabilities::default();
        caps.checksum.tcp = match (self.tcp_checksum_left_out, self.tcp_checksum_checked) {
            (false, false) => Checksum::Both,
            (true, false) => Checksum::Rx,
            (false, true) => Checksum::Tx,
            (true, true) => Checksum::None,
        };
        caps
    }
}

/// One received packet, handed to the interface.
pub(crate) struct RxToken<'a> {
    buf: Vec<u8>,
    pool: &'a mut Vec<Vec<u8>>,
}

impl phy::RxToken for RxToken<'_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        let result = f(&self.buf);
        if self.pool.len() < POOL_LIMIT && self.buf.capacity() <= POOLED_CAPACITY {
            self.pool.push(self.buf);
        }
        result
    }
}

/// Room for one outgoing packet.
pub(crate) struct TxToken<'a> {
    queue: &'a mut VecDeque<Vec<u8>>,
    pool: &'a mut Vec<Vec<u8>>,
    pool_large: &'a mut Vec<Vec<u8>>,
    small_capacity: usize,
}

impl<'a> TxToken<'a> {
    fn new(
        queue: &'a mut VecDeque<Vec<u8>>,
        pool: &'a mut Vec<Vec<u8>>,
        pool_large: &'a mut Vec<Vec<u8>>,
        small_capacity: usize,
    ) -> Self {
        Self { queue, pool, pool_large, small_capacity }
    }
}

impl phy::TxToken for TxToken<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let spare = if len > self.small_capacity { self.pool_large.pop() } else { self.pool.pop() };
        let mut buf = spare.unwrap_or_else(|| Vec::with_capacity(len.max(self.small_capacity)));
        buf.clear();
        buf.resize(len, 0);
        let result = f(&mut buf);
        self.queue.push_back(buf);
        result
    }
}
