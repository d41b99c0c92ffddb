//! Where a multipart upload's parts wait (ADR 0032): in place in the upload's object file when
//! they share one size (the object is then written once), else each in a file of its own.
//!
//! A parts directory `files/s3-parts/{upload}` holds:
//! - `slot-size`: the size P every part but the last is expected to have, fixed by the first
//!   part received with a known length;
//! - `object.bin`: part n of at most P bytes lives at offset (n-1)·P, marked by an empty
//!   `{n:05}.{md5}.{size}.slot` written once its bytes are synced;
//! - `{n:05}.{md5}.part`: a part that does not fit its slot (larger than P, or no length).
//!
//! Completing parts 1..N that are all in place with full slots (the last may be shorter) is a
//! truncate and a hash of `object.bin`; any other choice is copied into a new file.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::error::{ApiError, ApiResult};
use crate::files::spool::disk_error;
use crate::files::Spooled;

const OBJECT: &str = "object.bin";
const SLOT_SIZE: &str = "slot-size";

/// Where a stored part's bytes are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartAt {
    /// A file of its own.
    File(PathBuf),
    /// In `object.bin` at this offset.
    Slot(u64),
}

/// A stored part of a multipart upload.
#[derive(Debug, Clone)]
pub struct Part {
    pub number: u32,
    pub md5: [u8; 16],
    pub size: u64,
    pub at: PartAt,
}

impl Part {
    pub fn etag(&self) -> String {
        format!("\"{}\"", hex::encode(self.md5))
    }
}

/// One upload's parts directory.
pub struct PartsDir {
    dir: PathBuf,
}

impl PartsDir {
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    pub fn object_path(&self) -> PathBuf {
        self.dir.join(OBJECT)
    }

    /// The slot size, fixing it at `length` when no part has yet (`None` when unknown).
    fn slot_size(&self, length: Option<u64>) -> ApiResult<Option<u64>> {
        let path = self.dir.join(SLOT_SIZE);
        if let Some(len) = length.filter(|n| *n > 0) {
            match File::options().write(true).create_new(true).open(&path) {
                Ok(mut file) => {
                    // Written before any part uses it; a crash in between leaves an empty
                    // file, read as "unknown": later parts then get files of their own.
                    file.write_all(len.to_string().as_bytes())
                        .and_then(|()| file.sync_all())
                        .map_err(disk_error)?;
                    return Ok(Some(len));
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(disk_error(e)),
            }
        }
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok(text.trim().parse().ok()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(disk_error(e)),
        }
    }

    /// Where part `number` of `length` bytes goes: its slot when it fits one (and the object
    /// would stay within `max_bytes`), else a file of its own (`None`).
    pub fn slot_for(
        &self,
        number: u32,
        length: Option<u64>,
        max_bytes: Option<u64>,
    ) -> ApiResult<Option<u64>> {
        let Some(len) = length else { return Ok(None) };
        let Some(slot) = self.slot_size(length)? else {
            return Ok(None);
        };
        if len > slot {
            return Ok(None);
        }
        let offset = u64::from(number.saturating_sub(1)).checked_mul(slot);
        Ok(offset.filter(|o| {
            o.checked_add(len)
                .is_some_and(|end| max_bytes.is_none_or(|m| end <= m))
        }))
    }

    /// Forgets the stored part `number` (before its replacement is written).
    pub fn forget(&self, number: u32) -> ApiResult<()> {
        for old in self.list()?.into_iter().filter(|p| p.number == number) {
            let marker = match old.at {
                PartAt::File(path) => path,
                PartAt::Slot(_) => self.dir.join(slot_marker(&old)),
            };
            match std::fs::remove_file(marker) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(disk_error(e)),
            }
        }
        Ok(())
    }

    /// `object.bin` opened for writing at `offset` (created when missing).
    pub fn open_slot(&self, offset: u64) -> ApiResult<File> {
        let mut file = File::options()
            .write(true)
            .create(true)
            .truncate(false)
            .open(self.object_path())
            .map_err(disk_error)?;
        file.seek(SeekFrom::Start(offset)).map_err(disk_error)?;
        Ok(file)
    }

    /// Records part `number` as written (and synced) in its slot.
    pub fn record_slot(&self, number: u32, md5: [u8; 16], size: u64) -> ApiResult<()> {
        let part = Part {
            number,
            md5,
            size,
            at: PartAt::Slot(0),
        };
        File::create(self.dir.join(slot_marker(&part))).map_err(disk_error)?;
        Ok(())
    }

    /// Moves a received spool in as part `number`.
    pub fn adopt_file(&self, number: u32, md5: [u8; 16], spooled: Spooled) -> ApiResult<()> {
        let target = self
            .dir
            .join(format!("{number:05}.{}.part", hex::encode(md5)));
        std::fs::rename(spooled.path(), &target).map_err(disk_error)?;
        spooled.take_path();
        Ok(())
    }

    /// The stored parts, by number.
    pub fn list(&self) -> ApiResult<Vec<Part>> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(disk_error(e)),
        };
        let slot = self.slot_size(None)?;
        let mut parts = Vec::new();
        for entry in entries {
            let entry = entry.map_err(disk_error)?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let Some((number, md5, rest)) = parse_name(name) else {
                continue;
            };
            let part = match rest.as_slice() {
                ["part"] => Part {
                    number,
                    md5,
                    size: entry.metadata().map_err(disk_error)?.len(),
                    at: PartAt::File(entry.path()),
                },
                [size, "slot"] => {
                    let (Ok(size), Some(slot)) = (size.parse::<u64>(), slot) else {
                        continue;
                    };
                    Part {
                        number,
                        md5,
                        size,
                        at: PartAt::Slot(u64::from(number - 1).saturating_mul(slot)),
                    }
                }
                _ => continue,
            };
            parts.push(part);
        }
        parts.sort_by_key(|p| p.number);
        Ok(parts)
    }

    /// The object made of `chosen` (in order) as one synced file in `tmp_dir`, hashed.
    pub fn assemble(&self, chosen: &[Part], tmp_dir: &Path) -> ApiResult<Spooled> {
        let out = tmp_dir.join(format!("assemble-{}.part", uuid::Uuid::new_v4().simple()));
        let total: u64 = chosen.iter().map(|p| p.size).sum();
        if self.in_place(chosen, total)? {
            let object = self.object_path();
            let file = File::options()
                .read(true)
                .write(true)
                .open(&object)
                .map_err(disk_error)?;
            if file.metadata().map_err(disk_error)?.len() > total {
                // Parts after the chosen ones are not part of the object: they go.
                self.forget_slots_after(chosen.len())?;
                file.set_len(total).map_err(disk_error)?;
            }
            file.sync_all().map_err(disk_error)?;
            // A second name for the same bytes: publishing moves `out` away, and if it fails
            // the parts are still whole for another try.
            std::fs::hard_link(&object, &out).map_err(disk_error)?;
            let guard = Spooled::from_parts(out, String::new(), 0);
            let (sha, size) = super::read_hashing([Ok(file.take(total))], |_| Ok(()))?;
            return Ok(Spooled::from_parts(guard.take_path(), sha, size));
        }
        let file = File::create(&out).map_err(disk_error)?;
        let guard = Spooled::from_parts(out, String::new(), 0);
        let mut writer = std::io::BufWriter::with_capacity(1 << 20, file);
        let object = self.object_path();
        let readers = chosen.iter().map(|part| -> std::io::Result<_> {
            let (path, offset) = match &part.at {
                PartAt::File(path) => (path.as_path(), 0),
                PartAt::Slot(offset) => (object.as_path(), *offset),
            };
            let mut file = File::open(path)?;
            file.seek(SeekFrom::Start(offset))?;
            Ok(file.take(part.size))
        });
        let (sha, size) =
            super::read_hashing(readers, |block| writer.write_all(block).map_err(disk_error))?;
        if size != total {
            return Err(ApiError::internal(format!(
                "a multipart upload's parts hold {size} bytes, {total} expected"
            )));
        }
        let file = writer
            .into_inner()
            .map_err(|e| disk_error(e.into_error()))?;
        file.sync_all().map_err(disk_error)?;
        Ok(Spooled::from_parts(guard.take_path(), sha, size))
    }

    /// Whether `chosen` (`total` bytes) is parts 1..N, all in their slots, every one but the
    /// last full: then `object.bin` cut to `total` is the object.
    fn in_place(&self, chosen: &[Part], total: u64) -> ApiResult<bool> {
        let Some(slot) = self.slot_size(None)? else {
            return Ok(false);
        };
        let last = chosen.len().saturating_sub(1);
        let layout = chosen.iter().enumerate().all(|(i, part)| {
            let full = part.size == slot || (i == last && part.size <= slot);
            part.number as usize == i + 1 && matches!(part.at, PartAt::Slot(_)) && full
        });
        let written = match std::fs::metadata(self.object_path()) {
            Ok(meta) => meta.len(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => return Err(disk_error(e)),
        };
        Ok(layout && written >= total)
    }

    /// Forgets the parts in slots after the first `count` (their bytes are about to be cut).
    fn forget_slots_after(&self, count: usize) -> ApiResult<()> {
        for part in self.list()? {
            if matches!(part.at, PartAt::Slot(_)) && part.number as usize > count {
                self.forget(part.number)?;
            }
        }
        Ok(())
    }
}

fn slot_marker(part: &Part) -> String {
    format!(
        "{:05}.{}.{}.slot",
        part.number,
        hex::encode(part.md5),
        part.size
    )
}

/// `{number}.{md5}.{rest…}` → its number (≥ 1), MD5 and the remaining fields.
fn parse_name(name: &str) -> Option<(u32, [u8; 16], Vec<&str>)> {
    let mut fields = name.split('.');
    let number: u32 = fields.next()?.parse().ok().filter(|n| *n >= 1)?;
    let md5 = hex::decode(fields.next()?).ok()?;
    let md5 = <[u8; 16]>::try_from(md5.as_slice()).ok()?;
    Some((number, md5, fields.collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Stores `content` as part `number` the way UploadPart does: its slot when it fits.
    fn put(dir: &PartsDir, number: u32, content: &[u8]) -> Option<u64> {
        let md5: [u8; 16] = md5::Md5::digest(content).into();
        dir.forget(number).unwrap();
        let len = content.len() as u64;
        let slot = dir.slot_for(number, Some(len), None).unwrap();
        match slot {
            Some(offset) => {
                let mut file = dir.open_slot(offset).unwrap();
                file.write_all(content).unwrap();
                dir.record_slot(number, md5, len).unwrap();
            }
            None => {
                let tmp = dir.dir.join(format!("spool-{number}"));
                std::fs::write(&tmp, content).unwrap();
                let spooled = Spooled::from_parts(tmp, String::new(), len);
                dir.adopt_file(number, md5, spooled).unwrap();
            }
        }
        slot
    }

    fn assembled(dir: &PartsDir, numbers: &[u32], tmp: &Path) -> (Vec<u8>, Spooled) {
        let parts: Vec<Part> = dir
            .list()
            .unwrap()
            .into_iter()
            .filter(|p| numbers.contains(&p.number))
            .collect();
        let spooled = dir.assemble(&parts, tmp).unwrap();
        (std::fs::read(spooled.path()).unwrap(), spooled)
    }

    use md5::Digest as _;

    fn sha(content: &[u8]) -> String {
        hex::encode(sha2::Sha256::digest(content))
    }

    #[test]
    fn equal_parts_go_in_place_and_complete_without_a_copy() {
        let root = tempfile::tempdir().unwrap();
        let dir = PartsDir::new(root.path().join("up"));
        std::fs::create_dir_all(&dir.dir).unwrap();
        // Received out of order, the last (shorter) one first but after part 2 fixed P.
        assert_eq!(put(&dir, 2, b"bbbb"), Some(4));
        assert_eq!(put(&dir, 3, b"cc"), Some(8));
        assert_eq!(put(&dir, 1, b"aaaa"), Some(0));
        let listed = dir.list().unwrap();
        assert_eq!(
            listed
                .iter()
                .map(|p| (p.number, p.size))
                .collect::<Vec<_>>(),
            vec![(1, 4), (2, 4), (3, 2)]
        );
        let (bytes, spooled) = assembled(&dir, &[1, 2, 3], root.path());
        assert_eq!(bytes, b"aaaabbbbcc");
        assert_eq!(spooled.sha256, sha(b"aaaabbbbcc"));
        // The same inode: no byte was copied, and the parts stay whole for another try.
        assert_eq!(std::fs::read(dir.object_path()).unwrap(), b"aaaabbbbcc");
    }

    #[test]
    fn a_retried_part_replaces_its_slot() {
        let root = tempfile::tempdir().unwrap();
        let dir = PartsDir::new(root.path().join("up"));
        std::fs::create_dir_all(&dir.dir).unwrap();
        put(&dir, 1, b"xxxx");
        put(&dir, 2, b"yy");
        put(&dir, 1, b"aaaa");
        assert_eq!(dir.list().unwrap().len(), 2);
        assert_eq!(assembled(&dir, &[1, 2], root.path()).0, b"aaaayy");
    }

    #[test]
    fn parts_that_do_not_fit_are_copied_in_order() {
        let root = tempfile::tempdir().unwrap();
        let dir = PartsDir::new(root.path().join("up"));
        std::fs::create_dir_all(&dir.dir).unwrap();
        // P is fixed at 2 by the first part; a larger one gets a file of its own.
        assert_eq!(put(&dir, 1, b"aa"), Some(0));
        assert_eq!(put(&dir, 2, b"bbbbb"), None);
        assert_eq!(put(&dir, 3, b"c"), Some(4));
        let (bytes, spooled) = assembled(&dir, &[1, 2, 3], root.path());
        assert_eq!(bytes, b"aabbbbbc");
        assert_eq!(spooled.sha256, sha(b"aabbbbbc"));
    }

    #[test]
    fn a_gap_or_a_short_middle_part_is_copied_too() {
        let root = tempfile::tempdir().unwrap();
        let dir = PartsDir::new(root.path().join("up"));
        std::fs::create_dir_all(&dir.dir).unwrap();
        put(&dir, 1, b"aaa");
        put(&dir, 2, b"b");
        put(&dir, 3, b"ccc");
        put(&dir, 5, b"eee");
        assert_eq!(assembled(&dir, &[1, 2, 3], root.path()).0, b"aaabccc");
        assert_eq!(assembled(&dir, &[1, 3, 5], root.path()).0, b"aaaccceee");
    }

    #[test]
    fn completing_a_prefix_cuts_and_forgets_the_later_slots() {
        let root = tempfile::tempdir().unwrap();
        let dir = PartsDir::new(root.path().join("up"));
        std::fs::create_dir_all(&dir.dir).unwrap();
        put(&dir, 1, b"aa");
        put(&dir, 2, b"bb");
        put(&dir, 3, b"cc");
        let (bytes, _) = assembled(&dir, &[1, 2], root.path());
        assert_eq!(bytes, b"aabb");
        let left: Vec<u32> = dir.list().unwrap().iter().map(|p| p.number).collect();
        assert_eq!(left, vec![1, 2]);
    }

    #[test]
    fn a_part_without_a_length_gets_a_file() {
        let root = tempfile::tempdir().unwrap();
        let dir = PartsDir::new(root.path().join("up"));
        std::fs::create_dir_all(&dir.dir).unwrap();
        assert_eq!(dir.slot_for(1, None, None).unwrap(), None);
        // Past the size limit: a file, so the object cannot grow beyond it.
        assert_eq!(dir.slot_for(3, Some(10), Some(25)).unwrap(), None);
        assert_eq!(dir.slot_for(2, Some(10), Some(25)).unwrap(), Some(10));
    }
}
