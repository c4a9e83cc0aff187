//! Function code as Lambda takes it: a directory packed into a deterministic
//! zip, or a zip file as it is, and the SHA-256 Lambda reports as `CodeSha256`.
//!
//! The same files give the same bytes whatever their modification times or
//! the order the file system lists them in: entries are sorted by path, every
//! timestamp is the zip epoch (1980-01-01 00:00), and the mode is 0644, or
//! 0755 for a file with any execute bit (a custom runtime's `bootstrap`). So
//! an unchanged build hashes alike and plans no change, and a one-byte change
//! plans an update of the code.

use base64::Engine;
use sha2::Digest;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Code ready to send: the zip's bytes and its hash as Lambda writes it.
pub struct Package {
    pub zip: Vec<u8>,
    /// Base64 of the SHA-256 of `zip`: Lambda's `CodeSha256`.
    pub sha256: String,
}

/// Packs `path`: a directory into a zip, a `.zip` file read as it is.
pub fn package(path: &str) -> Result<Package, String> {
    let p = Path::new(path);
    let zip = if p.is_dir() {
        zip_dir(p)?
    } else {
        std::fs::read(p).map_err(|e| format!("cannot read the code at {path}: {e}"))?
    };
    Ok(Package {
        sha256: sha256_base64(&zip),
        zip,
    })
}

pub fn sha256_base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(bytes))
}

/// Every file under `dir`, with its path relative to `dir` written with `/`, sorted.
fn files(dir: &Path) -> Result<Vec<(String, PathBuf)>, String> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let entries =
            std::fs::read_dir(&d).map_err(|e| format!("cannot read {}: {e}", d.display()))?;
        for e in entries {
            let e = e.map_err(|e| format!("cannot read {}: {e}", d.display()))?;
            let path = e.path();
            // Symbolic links are followed for files; a linked directory could loop.
            let kind = e
                .file_type()
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            if kind.is_dir() {
                todo.push(path);
            } else if path.is_file() {
                let rel = path
                    .strip_prefix(dir)
                    .expect("under dir")
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
                    .join("/");
                out.push((rel, path));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// DOS date of 1980-01-01 (the zip epoch); the time is 00:00.
const DOS_DATE: u16 = (1 << 5) | 1;

/// Builds the zip of `dir`'s files: deflated where that is smaller, stored otherwise.
pub fn zip_dir(dir: &Path) -> Result<Vec<u8>, String> {
    let list = files(dir)?;
    if list.is_empty() {
        return Err(format!("{} holds no file to deploy", dir.display()));
    }
    let mut out: Vec<u8> = Vec::new();
    let mut central: Vec<u8> = Vec::new();
    for (name, path) in &list {
        let data =
            std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let executable = executable(path);
        let crc = crc32fast::hash(&data);
        let deflated = deflate(&data);
        let (method, body): (u16, &[u8]) = if deflated.len() < data.len() {
            (8, &deflated)
        } else {
            (0, &data)
        };
        let offset = u32::try_from(out.len()).map_err(|_| "the code is over 4 GiB".to_string())?;
        let size = |n: usize| u32::try_from(n).map_err(|_| "a file is over 4 GiB".to_string());
        let (csize, usize_) = (size(body.len())?, size(data.len())?);
        let name_len = u16::try_from(name.len()).map_err(|_| format!("path too long: {name}"))?;
        // Local file header.
        out.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        out.extend_from_slice(&20u16.to_le_bytes()); // version needed
        out.extend_from_slice(&0x0800u16.to_le_bytes()); // names are UTF-8
        out.extend_from_slice(&method.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes()); // time
        out.extend_from_slice(&DOS_DATE.to_le_bytes());
        out.extend_from_slice(&crc.to_le_bytes());
        out.extend_from_slice(&csize.to_le_bytes());
        out.extend_from_slice(&usize_.to_le_bytes());
        out.extend_from_slice(&name_len.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes()); // extra
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(body);
        // Central directory entry.
        let mode: u32 = if executable { 0o100755 } else { 0o100644 };
        central.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
        central.extend_from_slice(&((3u16 << 8) | 20).to_le_bytes()); // made by Unix
        central.extend_from_slice(&20u16.to_le_bytes());
        central.extend_from_slice(&0x0800u16.to_le_bytes());
        central.extend_from_slice(&method.to_le_bytes());
        central.extend_from_slice(&0u16.to_le_bytes());
        central.extend_from_slice(&DOS_DATE.to_le_bytes());
        central.extend_from_slice(&crc.to_le_bytes());
        central.extend_from_slice(&csize.to_le_bytes());
        central.extend_from_slice(&usize_.to_le_bytes());
        central.extend_from_slice(&name_len.to_le_bytes());
        central.extend_from_slice(&0u16.to_le_bytes()); // extra
        central.extend_from_slice(&0u16.to_le_bytes()); // comment
        central.extend_from_slice(&0u16.to_le_bytes()); // disk
        central.extend_from_slice(&0u16.to_le_bytes()); // internal attributes
        central.extend_from_slice(&(mode << 16).to_le_bytes());
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(name.as_bytes());
    }
    let entries = u16::try_from(list.len()).map_err(|_| "more than 65535 files".to_string())?;
    let cd_offset = u32::try_from(out.len()).map_err(|_| "the code is over 4 GiB".to_string())?;
    let cd_size = u32::try_from(central.len()).map_err(|_| "the code is over 4 GiB".to_string())?;
    out.extend_from_slice(&central);
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&entries.to_le_bytes());
    out.extend_from_slice(&entries.to_le_bytes());
    out.extend_from_slice(&cd_size.to_le_bytes());
    out.extend_from_slice(&cd_offset.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    Ok(out)
}

fn deflate(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
    // Writing to memory cannot fail.
    e.write_all(data).expect("deflate to memory");
    e.finish().expect("deflate to memory")
}

#[cfg(unix)]
fn executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn executable(_: &Path) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        for (name, body) in files {
            let p = d.path().join(name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, body).unwrap();
        }
        d
    }

    #[test]
    fn the_same_files_pack_to_the_same_bytes_and_one_byte_changes_the_hash() {
        let util = "export const x = 1;\n".repeat(20);
        let files = [
            ("index.mjs", "export const handler = async () => 'ok';\n"),
            ("lib/util.mjs", util.as_str()),
        ];
        let a = tree(&files);
        // Written in the other order, a while later: other mtimes and inode order.
        let b = tree(&[files[1], files[0]]);
        let (pa, pb) = (
            package(a.path().to_str().unwrap()).unwrap(),
            package(b.path().to_str().unwrap()).unwrap(),
        );
        assert_eq!(pa.zip, pb.zip);
        assert_eq!(pa.sha256, pb.sha256);
        std::fs::write(
            b.path().join("index.mjs"),
            "export const handler = async () => 'oK';\n",
        )
        .unwrap();
        let pc = package(b.path().to_str().unwrap()).unwrap();
        assert_ne!(pa.sha256, pc.sha256);
    }

    #[test]
    fn the_zip_reads_back_with_its_files() {
        let d = tree(&[("index.mjs", "hello"), ("a/b.txt", &"x".repeat(1000))]);
        let zip = zip_dir(d.path()).unwrap();
        // Local headers in path order: a/b.txt (deflated), then index.mjs (stored).
        assert_eq!(&zip[0..4], &[0x50, 0x4b, 0x03, 0x04]);
        assert_eq!(u16::from_le_bytes([zip[8], zip[9]]), 8);
        let name_len = u16::from_le_bytes([zip[26], zip[27]]) as usize;
        assert_eq!(&zip[30..30 + name_len], b"a/b.txt");
        let csize = u32::from_le_bytes(zip[18..22].try_into().unwrap()) as usize;
        let body = &zip[30 + name_len..30 + name_len + csize];
        let mut inflated = String::new();
        flate2::read::DeflateDecoder::new(body)
            .read_to_string(&mut inflated)
            .unwrap();
        assert_eq!(inflated, "x".repeat(1000));
        let next = 30 + name_len + csize;
        assert_eq!(&zip[next..next + 4], &[0x50, 0x4b, 0x03, 0x04]);
        assert_eq!(u16::from_le_bytes([zip[next + 8], zip[next + 9]]), 0);
        assert_eq!(
            u32::from_le_bytes(zip[next + 14..next + 18].try_into().unwrap()),
            crc32fast::hash(b"hello")
        );
        // The end record counts both entries.
        let end = &zip[zip.len() - 22..];
        assert_eq!(&end[0..4], &[0x50, 0x4b, 0x05, 0x06]);
        assert_eq!(u16::from_le_bytes([end[10], end[11]]), 2);
    }

    #[test]
    fn an_empty_directory_is_refused() {
        let d = tempfile::tempdir().unwrap();
        assert!(zip_dir(d.path()).unwrap_err().contains("no file"));
    }

    #[test]
    fn the_hash_is_lambdas() {
        // sha256("") in base64, as Lambda would write it.
        assert_eq!(
            sha256_base64(b""),
            "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        );
    }
}
