//! Network helpers shared by the probe kinds: turning a host into an address
//! (`resolve`), reading the kernel's routing tables (`routes`), opening a TCP
//! connection (`connect`), a timed TCP/TLS stream (`stream`) and TLS configs
//! (`tls`), and the certificate facts the TLS interference check reads (`x509`). Nothing here knows about targets or scheduling.

pub mod connect;
pub mod resolve;
pub mod routes;
pub mod stream;
pub mod tls;
pub mod x509;
