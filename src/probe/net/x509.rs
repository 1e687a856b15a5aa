//! The two facts the TLS interference check needs from a certificate, read
//! with a small DER walk (no X.509 crate): the issuer's distinguished name and
//! the SHA-256 fingerprint of the SubjectPublicKeyInfo (the `pin_spki` form,
//! as HPKP and curl's `--pinnedpubkey sha256//…` spell it, without the prefix).
//!
//! RFC 5280 §4.1: Certificate ::= SEQUENCE { tbsCertificate SEQUENCE {
//! [0] version OPTIONAL, serialNumber, signature, issuer Name, validity,
//! subject Name, subjectPublicKeyInfo SEQUENCE, … }, … }. Name ::= SEQUENCE
//! OF RelativeDistinguishedName (a SET OF AttributeTypeAndValue).

use sha2::{Digest, Sha256};

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const OID: u8 = 0x06;

/// A distinguished name: its RDNs in certificate order (the most general
/// first, usually `C`), each a list of `(type, value)` pairs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dn {
    pub rdns: Vec<Vec<(String, String)>>,
}

impl Dn {
    /// Every attribute value, in certificate order (`US`, `Let's Encrypt`, `R11`).
    pub fn values(&self) -> impl Iterator<Item = &str> {
        self.rdns.iter().flatten().map(|(_, v)| v.as_str())
    }

    /// Whether `expected` names this issuer: the whole DN as [`Dn`]'s
    /// `Display` writes it, or any one attribute value (`Let's Encrypt`).
    /// Exact comparison, except that ASCII case and the spaces after the
    /// commas of a whole DN are not significant.
    pub fn matches(&self, expected: &str) -> bool {
        let squeeze = |s: &str| {
            s.split(',')
                .map(str::trim)
                .collect::<Vec<_>>()
                .join(",")
                .to_ascii_lowercase()
        };
        squeeze(&self.to_string()) == squeeze(expected)
            || self
                .values()
                .any(|v| v.eq_ignore_ascii_case(expected.trim()))
    }
}

/// RFC 4514 order (the most specific RDN first): `CN=R11, O=Let's Encrypt, C=US`.
impl std::fmt::Display for Dn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, rdn) in self.rdns.iter().rev().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            for (j, (ty, value)) in rdn.iter().enumerate() {
                if j > 0 {
                    f.write_str("+")?;
                }
                write!(f, "{ty}=")?;
                for c in value.chars() {
                    if matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';') {
                        f.write_str("\\")?;
                    }
                    write!(f, "{c}")?;
                }
            }
        }
        Ok(())
    }
}

/// What the check reads from a leaf certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeafFacts {
    pub issuer: Dn,
    /// Base64 (standard, padded) of SHA-256 over the SubjectPublicKeyInfo DER.
    pub spki: String,
}

/// Reads the issuer and the SPKI fingerprint of a DER certificate; `None`
/// when it is not a certificate this walk understands.
pub fn leaf_facts(der: &[u8]) -> Option<LeafFacts> {
    let (tag, cert, _) = tlv(der)?;
    if tag != SEQUENCE {
        return None;
    }
    let (tag, tbs, _) = tlv(cert)?;
    if tag != SEQUENCE {
        return None;
    }
    let mut rest = tbs;
    let (tag, _, after) = tlv(rest)?;
    if tag == 0xa0 {
        rest = after; // explicit version
    }
    for _ in 0..2 {
        // serialNumber, signature
        rest = tlv(rest)?.2;
    }
    let (tag, issuer, after) = tlv(rest)?;
    if tag != SEQUENCE {
        return None;
    }
    let issuer = name(issuer)?;
    rest = after;
    for _ in 0..2 {
        // validity, subject
        rest = tlv(rest)?.2;
    }
    let (tag, _, after) = tlv(rest)?;
    if tag != SEQUENCE {
        return None;
    }
    let spki_der = &rest[..rest.len() - after.len()];
    Some(LeafFacts {
        issuer,
        spki: spki_fingerprint(spki_der),
    })
}

/// Base64 of SHA-256 over `spki_der` (a whole SubjectPublicKeyInfo TLV).
pub fn spki_fingerprint(spki_der: &[u8]) -> String {
    base64_encode(&Sha256::digest(spki_der))
}

fn name(mut input: &[u8]) -> Option<Dn> {
    let mut rdns = Vec::new();
    while !input.is_empty() {
        let (tag, mut set, after) = tlv(input)?;
        if tag != SET {
            return None;
        }
        let mut rdn = Vec::new();
        while !set.is_empty() {
            let (tag, atv, after_atv) = tlv(set)?;
            if tag != SEQUENCE {
                return None;
            }
            let (tag, oid, value) = tlv(atv)?;
            if tag != OID {
                return None;
            }
            let (vtag, value, _) = tlv(value)?;
            rdn.push((attribute_name(oid), string_value(vtag, value)));
            set = after_atv;
        }
        rdns.push(rdn);
        input = after;
    }
    Some(Dn { rdns })
}

/// The short name of a DN attribute type, or its dotted OID.
fn attribute_name(oid: &[u8]) -> String {
    let dotted = dotted_oid(oid);
    let short = match dotted.as_str() {
        "2.5.4.3" => "CN",
        "2.5.4.5" => "serialNumber",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.9" => "STREET",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "2.5.4.97" => "organizationIdentifier",
        "1.2.840.113549.1.9.1" => "emailAddress",
        "0.9.2342.19200300.100.1.25" => "DC",
        "0.9.2342.19200300.100.1.1" => "UID",
        _ => return dotted,
    };
    short.to_string()
}

fn dotted_oid(oid: &[u8]) -> String {
    let mut arcs: Vec<u64> = Vec::new();
    let mut acc: u64 = 0;
    for &b in oid {
        acc = (acc << 7) | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            if arcs.is_empty() {
                let first = (acc / 40).min(2);
                arcs.push(first);
                arcs.push(acc - first * 40);
            } else {
                arcs.push(acc);
            }
            acc = 0;
        }
    }
    arcs.iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(".")
}

/// A DirectoryString as text: UTF8String, PrintableString, IA5String,
/// TeletexString (read as Latin-1), BMPString (UTF-16BE); anything else as
/// `#` and hex, as RFC 4514 writes values it cannot show.
fn string_value(tag: u8, value: &[u8]) -> String {
    match tag {
        0x0c | 0x13 | 0x16 => String::from_utf8_lossy(value).into_owned(),
        0x14 => value.iter().map(|&b| char::from(b)).collect(),
        0x1e => {
            let units: Vec<u16> = value
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            String::from_utf16_lossy(&units)
        }
        _ => {
            let mut s = String::from("#");
            for b in value {
                s.push_str(&format!("{b:02x}"));
            }
            s
        }
    }
}

/// Splits one DER TLV off `input`: (tag, content, rest); `None` when it
/// is cut short (also used by `tls` for `notAfter`).
pub(super) fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let (bytes, after) = rest.split_at(n);
        rest = after;
        bytes
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b))
    };
    if rest.len() < len {
        return None;
    }
    let (content, rest) = rest.split_at(len);
    Some((tag, content, rest))
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding.
pub fn base64_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, DnType, IsCa, Issuer, KeyPair};

    #[test]
    fn base64_matches_known_vectors() {
        for (raw, text) in [
            (&b""[..], ""),
            (b"f", "Zg=="),
            (b"fo", "Zm8="),
            (b"foo", "Zm9v"),
            (b"foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64_encode(raw), text);
        }
    }

    fn ca(names: &[(DnType, &str)]) -> (rcgen::Certificate, Issuer<'static, KeyPair>) {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.distinguished_name = rcgen::DistinguishedName::new();
        for (ty, v) in names {
            params.distinguished_name.push(ty.clone(), *v);
        }
        let cert = params.self_signed(&key).unwrap();
        (cert, Issuer::new(params, key))
    }

    #[test]
    fn reads_issuer_and_spki_of_an_rcgen_leaf() {
        let (_, issuer) = ca(&[
            (DnType::CountryName, "US"),
            (DnType::OrganizationName, "Let's Encrypt"),
            (DnType::CommonName, "R11"),
        ]);
        let key = KeyPair::generate().unwrap();
        let params = CertificateParams::new(vec!["example.org".into()]).unwrap();
        let leaf = params.signed_by(&key, &issuer).unwrap();
        let facts = leaf_facts(leaf.der()).unwrap();
        assert_eq!(facts.issuer.to_string(), "CN=R11, O=Let's Encrypt, C=US");
        assert!(facts.issuer.matches("Let's Encrypt"));
        assert!(facts.issuer.matches("r11"));
        assert!(facts.issuer.matches("CN=R11,O=Let's Encrypt, C=US"));
        assert!(!facts.issuer.matches("Let's"));
        assert!(!facts.issuer.matches("CN=R11"));
        // The fingerprint is SHA-256 over the key's SubjectPublicKeyInfo DER.
        assert_eq!(
            facts.spki,
            spki_fingerprint(&rcgen::PublicKeyData::subject_public_key_info(&key))
        );
        assert_eq!(facts.spki.len(), 44);
    }

    #[test]
    fn special_characters_are_escaped_and_unknown_types_dotted() {
        let (_, issuer) = ca(&[
            (DnType::OrganizationName, "Acme, Inc."),
            (DnType::CustomDnType(vec![1, 3, 6, 1, 4, 1, 99999, 1]), "x"),
            (DnType::CommonName, "Interceptor CA"),
        ]);
        let key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(vec!["a.test".into()])
            .unwrap()
            .signed_by(&key, &issuer)
            .unwrap();
        let dn = leaf_facts(leaf.der()).unwrap().issuer;
        assert_eq!(
            dn.to_string(),
            "CN=Interceptor CA, 1.3.6.1.4.1.99999.1=x, O=Acme\\, Inc."
        );
        assert!(dn.matches("Acme, Inc."));
    }

    #[test]
    fn garbage_is_none() {
        assert_eq!(leaf_facts(&[]), None);
        assert_eq!(leaf_facts(b"not a certificate"), None);
        assert_eq!(leaf_facts(&[0x30, 0x03, 0x30, 0x01, 0x02]), None);
    }
}
