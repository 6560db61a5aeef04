//! TNTP bytes into each of the four TNTP readers (network, trips, nodes, flows).
#![no_main]

use libfuzzer_sys::fuzz_target;
use twin_import::tntp;

fuzz_target!(|data: &[u8]| {
    let _ = tntp::parse_net(data, "fuzz_net.tntp");
    let _ = tntp::parse_trips(data, "fuzz_trips.tntp");
    let _ = tntp::parse_nodes(data, "fuzz_node.tntp");
    let _ = tntp::parse_flows(data, "fuzz_flow.tntp");
});
