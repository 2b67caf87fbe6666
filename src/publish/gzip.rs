//! gzip of published reports (AP §3: `Content-Encoding: gzip`, which the app undoes).
//!
//! Owns only the compression of one finished JSON body; the report itself is built by the
//! `report` layer and the headers by [`super::apps`].

use std::io::Write;

use flate2::Compression;
use flate2::write::GzEncoder;

/// Compresses one JSON report for `POST /api/report`.
///
/// Uses the fastest level: reports are mostly repeated keys, which even the fastest level
/// shrinks several times over, and the probe runs on small hosts where CPU matters more than
/// the last few percent of bytes.
pub fn gzip(json: &[u8]) -> Vec<u8> {
    // JSON reports compress well; start near the expected size to avoid regrowing.
    let mut encoder = GzEncoder::new(Vec::with_capacity(json.len() / 8 + 64), Compression::fast());
    // unwrap: `Write for Vec<u8>` never returns an error, so neither can the encoder over it.
    encoder
        .write_all(json)
        .expect("writing into a Vec cannot fail");
    // unwrap: as above, finishing only writes the trailer into the same Vec.
    encoder.finish().expect("writing into a Vec cannot fail")
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use flate2::read::GzDecoder;

    use super::gzip;

    fn gunzip(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        GzDecoder::new(data)
            .read_to_end(&mut out)
            .expect("valid gzip");
        out
    }

    #[test]
    fn round_trips_a_report() {
        let json =
            br#"{"Host":{"nodes":{"vm;<host>":{"topology":"host","latest":{}}}},"Plugins":[]}"#;
        let packed = gzip(json);
        assert_eq!(&packed[..2], &[0x1f, 0x8b], "gzip magic");
        assert_eq!(gunzip(&packed), json);
    }

    #[test]
    fn round_trips_empty_input() {
        assert_eq!(gunzip(&gzip(b"")), b"");
    }

    #[test]
    fn shrinks_repetitive_json() {
        let json = r#"{"topology":"process","latest":{"pid":{"value":"1"}}},"#.repeat(2000);
        let packed = gzip(json.as_bytes());
        assert!(packed.len() * 10 < json.len(), "{} bytes", packed.len());
        assert_eq!(gunzip(&packed), json.as_bytes());
    }
}
