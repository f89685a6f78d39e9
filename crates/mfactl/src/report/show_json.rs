//! `mfactl show --format json`: the show document ([`ShowDocument`]) as pretty JSON. Its shape is
//! the type's (and `schemas/show.schema.json`'s); this only writes it.

use std::io;

use crate::engine::show::ShowDocument;

/// The document, pretty-printed, with a final newline.
pub fn render_show_json(document: &ShowDocument, out: &mut impl io::Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, document)?;
    out.write_all(b"\n")
}
