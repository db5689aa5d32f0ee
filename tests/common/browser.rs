//! Looking at a report as its reader does: headless Chromium (Debian's
//! `chromium-headless-shell`, which `make tools` installs) renders `report.html` to a PNG,
//! and the PNG is checked for ink, so a page that renders blank, unstyled or chartless
//! fails the test instead of shipping.

use std::path::{Path, PathBuf};

const CHROMIUM: &str = "chromium-headless-shell";

/// Renders `html` at 1000 px wide into `png`, as Chromium lays it out.
pub fn screenshot(html: &Path, png: &Path) {
    let html = std::fs::canonicalize(html).unwrap();
    let out = std::process::Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--window-size=1000,2600",
        ])
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("file://{}", html.display()))
        .output()
        .unwrap_or_else(|e| panic!("{CHROMIUM} did not run ({e}): `make tools` installs it"));
    assert!(
        out.status.success() && png.is_file(),
        "{CHROMIUM} made no screenshot: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// What a screenshot holds: the share of pixels that are not white, and how many are
/// close to each colour asked about.
pub struct Ink {
    pub inked: f64,
    pub near: Vec<usize>,
}

pub fn ink(png: &Path, colours: &[[u8; 3]]) -> Ink {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(png).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    let pixels: Vec<&[u8]> = buf[..info.buffer_size()].chunks(channels).collect();
    let inked = pixels
        .iter()
        .filter(|p| p[..3].iter().any(|c| *c < 245))
        .count();
    let near = colours
        .iter()
        .map(|want| {
            let close = |p: &&&[u8]| (0..3).all(|i| (p[i] as i32 - want[i] as i32).abs() <= 12);
            pixels.iter().filter(close).count()
        })
        .collect();
    Ink {
        inked: inked as f64 / pixels.len().max(1) as f64,
        near,
    }
}

/// The report's pass green and its fail red.
pub const GREEN: [u8; 3] = [0x2D, 0xA4, 0x4E];
pub const RED: [u8; 3] = [0xD7, 0x3A, 0x49];

/// Screenshots a report and asserts it reads as one: ink across the page, and the
/// verdict badge's colour (`verdict`) drawn.
pub fn assert_report_renders(html: &Path, verdict: [u8; 3]) -> PathBuf {
    let png = html.with_extension("png");
    screenshot(html, &png);
    let ink = ink(&png, &[verdict]);
    assert!(
        ink.inked > 0.03,
        "{} renders nearly blank: {:.1} % of pixels inked",
        html.display(),
        ink.inked * 100.0
    );
    assert!(
        ink.near[0] > 400,
        "{} shows too little of its verdict colour ({} pixels)",
        html.display(),
        ink.near[0]
    );
    png
}
