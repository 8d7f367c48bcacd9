//! The `.npy` reader on files as numpy writes them, and on what a client may send instead.

use super::*;

/// A `.npy` file as `numpy.save` writes it (version 1, header padded to 64 bytes with a
/// newline at the end), with `header` as its dictionary and `values` after it.
fn npy(header: &str, values: &[f64]) -> Vec<u8> {
    let mut text = header.to_string();
    while !(10 + text.len() + 1).is_multiple_of(64) {
        text.push(' ');
    }
    text.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend((text.len() as u16).to_le_bytes());
    bytes.extend(text.as_bytes());
    for v in values {
        bytes.extend(v.to_le_bytes());
    }
    bytes
}

fn read_bytes(bytes: &[u8], dims: usize) -> Result<NpyArray, String> {
    read(bytes, dims, u64::MAX)
}

#[test]
fn reads_c_and_fortran_order_matrices_and_vectors() {
    let c = npy(
        "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }",
        &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
    );
    let array = read_bytes(&c, 2).unwrap();
    assert_eq!(array.shape, [2, 3]);
    assert_eq!(array.values, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    // the same matrix stored column by column
    let f = npy(
        "{'descr': '<f8', 'fortran_order': True, 'shape': (2, 3), }",
        &[1.0, 4.0, 2.0, 5.0, 3.0, 6.0],
    );
    assert_eq!(read_bytes(&f, 2).unwrap(), array);
    let v = npy(
        "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }",
        &[0.5, 0.25, -1.0],
    );
    let vector = read_bytes(&v, 1).unwrap();
    assert_eq!(
        (vector.shape, vector.values),
        (vec![3], vec![0.5, 0.25, -1.0])
    );
    // version 2 (4-byte header length), keys in another order, no trailing comma
    let mut v2 = b"\x93NUMPY\x02\x00".to_vec();
    let header = "{'shape': (2,), 'fortran_order': False, 'descr': '<f8'}\n";
    v2.extend((header.len() as u32).to_le_bytes());
    v2.extend(header.as_bytes());
    v2.extend(7.0f64.to_le_bytes());
    v2.extend(8.0f64.to_le_bytes());
    assert_eq!(read_bytes(&v2, 1).unwrap().values, [7.0, 8.0]);
    // an empty array
    let e = npy(
        "{'descr': '<f8', 'fortran_order': False, 'shape': (0, 4), }",
        &[],
    );
    assert_eq!(read_bytes(&e, 2).unwrap().values, Vec::<f64>::new());
}

#[test]
fn a_pickle_is_refused_unread() {
    // what pickle.dump writes first (protocol 4), e.g. a gensim model saved under this name
    let pickle = b"\x80\x04\x95\x1f\x00\x00\x00\x00\x00\x00\x00\x8c\x08builtins";
    let e = read_bytes(pickle, 2).unwrap_err();
    assert!(
        e.starts_with("is a Python pickle, not a .npy file: topicd never reads pickles"),
        "{e}"
    );
    // an object array: numpy would unpickle what follows
    let objects = npy(
        "{'descr': '|O', 'fortran_order': False, 'shape': (2,), }",
        &[],
    );
    let e = read_bytes(&objects, 1).unwrap_err();
    assert!(
        e.starts_with("holds values of type '|O', not little-endian float64"),
        "{e}"
    );
}

#[test]
fn truncated_files_and_trailing_bytes_are_refused() {
    let full = npy(
        "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2), }",
        &[1.0; 4],
    );
    let e = read_bytes(&full[..full.len() - 3], 2).unwrap_err();
    assert_eq!(
        e,
        "is truncated: its header announces 4 values (32 bytes) but 29 bytes follow it"
    );
    let e = read_bytes(&full[..20], 2).unwrap_err();
    assert_eq!(e, "is truncated in its header");
    let e = read_bytes(&full[..9], 2).unwrap_err();
    assert_eq!(e, "is truncated in its header length");
    let mut longer = full.clone();
    longer.push(0);
    let e = read_bytes(&longer, 2).unwrap_err();
    assert_eq!(e, "has bytes after the 4 values its header announces");
    assert_eq!(
        read_bytes(b"", 2).unwrap_err(),
        "is empty: expected a .npy file written by numpy.save"
    );
    let e = read_bytes(b"%%MatrixMarket matrix", 2).unwrap_err();
    assert!(e.starts_with("is not a .npy file"), "{e}");
}

#[test]
fn a_huge_claim_is_refused_before_reading() {
    // 10^12 values claimed, none there: refused for its size, not after reading
    let huge = npy(
        "{'descr': '<f8', 'fortran_order': False, 'shape': (1000000, 1000000), }",
        &[],
    );
    let e = read_bytes(&huge, 2).unwrap_err();
    assert_eq!(
        e,
        "claims an array of shape [1000000, 1000000], more than the 8589934592 values topicd \
         accepts here"
    );
    // a product that overflows u64
    let overflow = npy(
        "{'descr': '<f8', 'fortran_order': False, 'shape': (18446744073709551615, 2), }",
        &[],
    );
    assert!(
        read_bytes(&overflow, 2)
            .unwrap_err()
            .starts_with("claims an array of shape")
    );
    // the caller's own bound
    let small = npy(
        "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }",
        &[1.0; 3],
    );
    let e = read(&small[..], 1, 2).unwrap_err();
    assert_eq!(
        e,
        "claims an array of shape [3], more than the 2 values topicd accepts here"
    );
}

#[test]
fn other_types_shapes_and_headers_are_refused_with_the_reason() {
    let f4 = npy(
        "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }",
        &[1.0],
    );
    assert_eq!(
        read_bytes(&f4, 1).unwrap_err(),
        "holds values of type '<f4', not little-endian float64 ('<f8'): write it with \
         numpy.save(path, array.astype('<f8'))"
    );
    let big_endian = npy(
        "{'descr': '>f8', 'fortran_order': False, 'shape': (1,), }",
        &[1.0],
    );
    assert!(
        read_bytes(&big_endian, 1)
            .unwrap_err()
            .starts_with("holds values of type '>f8'")
    );
    let three = npy(
        "{'descr': '<f8', 'fortran_order': False, 'shape': (1, 1, 1), }",
        &[1.0],
    );
    assert_eq!(
        read_bytes(&three, 2).unwrap_err(),
        "holds an array of 3 dimensions [1, 1, 1], where 2 are wanted"
    );
    let structured = npy(
        "{'descr': [('a', '<f8')], 'fortran_order': False, 'shape': (1,), }",
        &[1.0],
    );
    assert!(
        read_bytes(&structured, 1)
            .unwrap_err()
            .starts_with("holds a structured array")
    );
    for header in [
        "{'descr': '<f8', 'fortran_order': False}",
        "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), 'extra': 1}",
        "{'descr': '<f8', 'fortran_order': Maybe, 'shape': (2,), }",
        "{'descr': '<f8', 'fortran_order': False, 'shape': (-2,), }",
        "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), } trailing",
        "['descr', '<f8']",
        "{'descr': '<f8', 'descr': '<f8', 'fortran_order': False, 'shape': (2,)}",
    ] {
        let e = read_bytes(&npy(header, &[1.0, 2.0]), 1).unwrap_err();
        assert!(
            e.starts_with("has a header topicd cannot read ("),
            "{header}: {e}"
        );
    }
    let mut version = npy(
        "{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }",
        &[1.0],
    );
    version[6] = 9;
    assert_eq!(
        read_bytes(&version, 1).unwrap_err(),
        "is a .npy file of version 9, which topicd does not know"
    );
    let mut long = b"\x93NUMPY\x02\x00".to_vec();
    long.extend(u32::MAX.to_le_bytes());
    assert_eq!(
        read_bytes(&long, 1).unwrap_err(),
        "has a header of 4294967295 bytes, more than the 65536 topicd accepts"
    );
}
