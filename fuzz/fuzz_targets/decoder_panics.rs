//! The OSM reader runs osmpbf's block decoding inside `catch_unwind` (osmpbf and protobuf panic on some corrupt
//! blocks: unknown enum values, overflowing delta decoding) and turns such a panic into an `ImportError`. libFuzzer's
//! panic hook aborts on every panic, even a caught one, so the OSM targets let panics raised *inside those two
//! crates* unwind to the reader's `catch_unwind`; any other panic still aborts, and so does one of theirs that the
//! reader does not catch (libfuzzer-sys aborts when a panic reaches the target's own `catch_unwind`).

pub fn let_the_reader_catch_decoder_panics() {
    let abort = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let in_decoder = info.location().is_some_and(|l| {
            let f = l.file();
            f.contains("/osmpbf-") || f.contains("/protobuf-")
        });
        if !in_decoder {
            abort(info);
        }
    }));
}
