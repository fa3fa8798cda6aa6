//! The module as an OCI image, built without a container daemon: one
//! `FROM scratch`-style layer holding `plugin.wasm`, the shape Istio's
//! `WasmPlugin` (`oci://`) and Envoy Gateway's `EnvoyExtensionPolicy` pull.
//!
//! Reproducible: the tar entry has a fixed owner, mode and time, the gzip
//! header no time and no name, the config no creation date, and JSON keys
//! are sorted, so the same module always gives the same manifest digest.
//! `cargo xtask image` writes the OCI layout; pushing it is `skopeo copy`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";
pub const LAYER_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// The file name both Istio and Envoy Gateway look for in the layer.
pub const PLUGIN_FILE: &str = "plugin.wasm";

/// What was built: the layout folder, its tag and the manifest's digest
/// (`sha256:HEX`, what a `@sha256:` reference and Istio's `sha256` name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    pub layout: PathBuf,
    pub tag: String,
    pub digest: String,
    /// The sha256 of the module itself (an HTTP `sha256` in Envoy or Envoy Gateway).
    pub wasm_sha256: String,
}

impl Image {
    /// The manifest digest without its `sha256:` prefix.
    pub fn digest_hex(&self) -> &str {
        self.digest.trim_start_matches("sha256:")
    }

    /// `oci:LAYOUT:TAG`, the layout as skopeo names it.
    pub fn skopeo_ref(&self) -> String {
        format!("oci:{}:{}", self.layout.display(), self.tag)
    }
}

/// Writes an OCI image layout for `wasm` into `layout` (replacing what was
/// there) with one manifest tagged `tag`.
pub fn build(wasm: &Path, layout: &Path, tag: &str) -> Result<Image> {
    let module = std::fs::read(wasm).with_context(|| format!("reading {}", wasm.display()))?;
    if module.get(..4) != Some(b"\0asm") {
        bail!("{} is not a wasm module", wasm.display());
    }
    if layout.exists() {
        std::fs::remove_dir_all(layout)
            .with_context(|| format!("clearing {}", layout.display()))?;
    }
    let blobs = layout.join("blobs/sha256");
    std::fs::create_dir_all(&blobs)?;

    let tar = tar_one_file(PLUGIN_FILE, &module)?;
    let layer = gzip(&tar)?;
    let config = canonical(&json!({
        "architecture": "wasm",
        "os": "wasip1",
        "config": {},
        "rootfs": { "type": "layers", "diff_ids": [sha256_digest(&tar)] },
    }))?;
    let manifest = canonical(&json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "config": descriptor(CONFIG_MEDIA_TYPE, &config),
        "layers": [descriptor(LAYER_MEDIA_TYPE, &layer)],
    }))?;
    for blob in [&layer, &config, &manifest] {
        let path = blobs.join(sha256_hex(blob));
        std::fs::write(&path, blob).with_context(|| format!("writing {}", path.display()))?;
    }
    let mut entry = descriptor(MANIFEST_MEDIA_TYPE, &manifest);
    entry["annotations"] = json!({ "org.opencontainers.image.ref.name": tag });
    let index = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [entry],
    });
    std::fs::write(layout.join("index.json"), canonical(&index)?)?;
    std::fs::write(
        layout.join("oci-layout"),
        canonical(&json!({ "imageLayoutVersion": "1.0.0" }))?,
    )?;
    Ok(Image {
        layout: layout.to_path_buf(),
        tag: tag.to_string(),
        digest: sha256_digest(&manifest),
        wasm_sha256: sha256_hex(&module),
    })
}

/// Copies the image to `reference` (`HOST[:PORT]/REPO[:TAG]`) with skopeo,
/// keeping its digest. `tls_verify: false` is for a loopback registry
/// without TLS. Credentials are skopeo's own (`skopeo login`, or
/// `REGISTRY_AUTH_FILE`).
pub fn push(image: &Image, reference: &str, tls_verify: bool) -> Result<()> {
    let reference = reference.trim_start_matches("oci://");
    let out = Command::new("skopeo")
        .args(["copy", "--quiet", "--preserve-digests"])
        .arg(format!("--dest-tls-verify={tls_verify}"))
        .arg(image.skopeo_ref())
        .arg(format!("docker://{reference}"))
        .output()
        .context("running skopeo (apt-get install skopeo)")?;
    if !out.status.success() {
        bail!(
            "skopeo copy to {reference} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// A descriptor of a blob: media type, digest, size.
fn descriptor(media_type: &str, blob: &[u8]) -> Value {
    json!({ "mediaType": media_type, "digest": sha256_digest(blob), "size": blob.len() })
}

/// Compact JSON with sorted keys (serde_json's map is ordered by key).
fn canonical(v: &Value) -> Result<Vec<u8>> {
    Ok(serde_json::to_vec(v)?)
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", sha256_hex(bytes))
}

/// gzip with no time and no file name in its header.
fn gzip(bytes: &[u8]) -> Result<Vec<u8>> {
    let mut enc = flate2::GzBuilder::new()
        .mtime(0)
        .operating_system(255)
        .write(Vec::new(), flate2::Compression::best());
    enc.write_all(bytes)?;
    Ok(enc.finish()?)
}

/// A POSIX (ustar) archive of one regular file, owned by 0:0, mode 0644,
/// time 0: the bytes depend on the name and contents only.
fn tar_one_file(name: &str, contents: &[u8]) -> Result<Vec<u8>> {
    if name.len() > 99 {
        bail!("tar entry name too long: {name}");
    }
    let mut header = [0u8; 512];
    let mut put = |offset: usize, field: &[u8]| {
        header[offset..offset + field.len()].copy_from_slice(field);
    };
    put(0, name.as_bytes());
    put(100, b"0000644\0"); // mode
    put(108, b"0000000\0"); // uid
    put(116, b"0000000\0"); // gid
    put(124, format!("{:011o}\0", contents.len()).as_bytes()); // size
    put(136, b"00000000000\0"); // mtime
    put(148, b"        "); // checksum, as spaces while it is computed
    put(156, b"0"); // regular file
    put(257, b"ustar\0"); // magic
    put(263, b"00"); // version
    let sum: u32 = header.iter().map(|b| u32::from(*b)).sum();
    header[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());

    let mut out = Vec::with_capacity(contents.len() + 2048);
    out.extend_from_slice(&header);
    out.extend_from_slice(contents);
    out.resize(out.len().div_ceil(512) * 512, 0);
    out.extend_from_slice(&[0u8; 1024]); // end of archive
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn module() -> Vec<u8> {
        let mut m = b"\0asm\x01\0\0\0".to_vec();
        m.extend((0..3000u32).map(|i| (i % 251) as u8));
        m
    }

    #[test]
    fn the_same_module_gives_the_same_digest() {
        let dir = crate::paths::scratch_dir("oci-repro").unwrap();
        let wasm = dir.join("m.wasm");
        std::fs::write(&wasm, module()).unwrap();
        let a = build(&wasm, &dir.join("a"), "v1").unwrap();
        let b = build(&wasm, &dir.join("b"), "v1").unwrap();
        assert_eq!(a.digest, b.digest);
        assert_eq!(a.wasm_sha256, sha256_hex(&module()));

        let mut other = module();
        other.push(0);
        std::fs::write(&wasm, other).unwrap();
        let c = build(&wasm, &dir.join("c"), "v1").unwrap();
        assert_ne!(a.digest, c.digest);
    }

    #[test]
    fn the_manifest_has_one_plugin_layer() {
        let dir = crate::paths::scratch_dir("oci-shape").unwrap();
        let wasm = dir.join("m.wasm");
        std::fs::write(&wasm, module()).unwrap();
        let img = build(&wasm, &dir.join("layout"), "t").unwrap();
        let blob = |d: &str| {
            std::fs::read(
                img.layout
                    .join("blobs/sha256")
                    .join(d.trim_start_matches("sha256:")),
            )
            .unwrap()
        };
        let manifest: Value = serde_json::from_slice(&blob(&img.digest)).unwrap();
        assert_eq!(manifest["mediaType"], MANIFEST_MEDIA_TYPE);
        assert_eq!(manifest["config"]["mediaType"], CONFIG_MEDIA_TYPE);
        let layers = manifest["layers"].as_array().unwrap();
        assert_eq!(layers.len(), 1);
        assert_eq!(layers[0]["mediaType"], LAYER_MEDIA_TYPE);
        // The layer unpacks (with the real tar) to exactly plugin.wasm.
        let layer = layers[0]["digest"].as_str().unwrap();
        let tgz = dir.join("layer.tar.gz");
        std::fs::write(&tgz, blob(layer)).unwrap();
        let out = Command::new("tar")
            .arg("-xzvf")
            .arg(&tgz)
            .arg("-C")
            .arg(&dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), PLUGIN_FILE);
        assert_eq!(std::fs::read(dir.join(PLUGIN_FILE)).unwrap(), module());
        let index: Value =
            serde_json::from_slice(&std::fs::read(img.layout.join("index.json")).unwrap()).unwrap();
        assert_eq!(index["manifests"][0]["digest"], img.digest.as_str());
    }
}
