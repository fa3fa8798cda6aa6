//! `cargo xtask image [--tag T] [--push HOST/REPO[:TAG]] [--insecure]`: the
//! release module as an OCI image in `target/image/transit-guard/` (an OCI
//! layout, no Docker daemon), its digest printed; `--push` copies it to a
//! registry with skopeo, digest unchanged.

use anyhow::{bail, Result};
use integration_tests::oci;
use integration_tests::paths::workspace_root;

use crate::setup;

pub fn run(args: &[&str]) -> Result<()> {
    let mut tag = "latest".to_string();
    let mut push = None;
    let mut tls_verify = true;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match *arg {
            "--tag" => tag = next(&mut it, "--tag")?,
            "--push" => push = Some(next(&mut it, "--push")?),
            "--insecure" => tls_verify = false,
            other => bail!("image: unknown argument {other:?}"),
        }
    }
    setup::ensure_wasm_target()?;
    let wasm = setup::build_wasm()?;
    let layout = workspace_root().join("target/image/transit-guard");
    let image = oci::build(&wasm, &layout, &tag)?;
    std::fs::write(
        layout.with_file_name("digest"),
        format!("{}\n", image.digest),
    )?;
    eprintln!(
        "xtask: OCI layout {} (tag {tag}); plugin.wasm sha256 {}",
        layout.display(),
        image.wasm_sha256
    );
    if let Some(reference) = push {
        setup::ensure_skopeo()?;
        oci::push(&image, &reference, tls_verify)?;
        let reference = reference.trim_start_matches("oci://");
        let repo = reference
            .rsplit_once(':')
            .filter(|(_, t)| !t.contains('/'))
            .map_or(reference, |(r, _)| r);
        eprintln!(
            "xtask: pushed; reference it by digest: oci://{repo}@{}",
            image.digest
        );
    }
    // The digest alone on stdout, for scripts.
    println!("{}", image.digest);
    Ok(())
}

fn next(it: &mut std::slice::Iter<&str>, flag: &str) -> Result<String> {
    match it.next() {
        Some(v) => Ok(v.to_string()),
        None => bail!("{flag} needs a value"),
    }
}
