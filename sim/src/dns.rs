//! A DNS server with exact timings, for the resolver's tests: it answers every A question with
//! one IPv4 address after a known delay and with a known TTL, answers other questions (AAAA)
//! with no records and an SOA that lets the "no such record" be cached for the same TTL (as a
//! real zone's server does, RFC 2308), and counts the A questions it got. Over UDP on a real socket, as a stub
//! resolver asks; each question is answered from its own task, so a delay never queues others.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::net::UdpSocket;

/// How the server answers.
#[derive(Debug, Clone, Copy)]
pub struct DnsAnswer {
    /// The address every A question gets.
    pub address: Ipv4Addr,
    /// How long each answer waits before it is sent.
    pub delay: Duration,
    /// The TTL of the A record, seconds.
    pub ttl: u32,
    /// Answer every question with its ID and then bytes that are no DNS message (a broken or
    /// hostile server), instead of the records.
    pub garbage: bool,
}

/// A running DNS server; stops when dropped.
pub struct DnsServer {
    pub addr: SocketAddr,
    questions: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl DnsServer {
    /// Serves on `bind` (port 0 for any free one) until dropped.
    pub async fn start(bind: SocketAddr, answer: DnsAnswer) -> io::Result<DnsServer> {
        let socket = Arc::new(UdpSocket::bind(bind).await?);
        let addr = socket.local_addr()?;
        let questions = Arc::new(AtomicUsize::new(0));
        let counted = questions.clone();
        let task = tokio::spawn(async move {
            let mut buf = [0u8; 1500];
            while let Ok((n, from)) = socket.recv_from(&mut buf).await {
                let Some((mut reply, is_a)) = reply(&buf[..n], &answer) else {
                    continue;
                };
                if answer.garbage {
                    // A response header claiming 65,535 of everything, then noise.
                    reply.truncate(2);
                    reply.extend_from_slice(&[0x81, 0x80]);
                    reply.extend(std::iter::repeat_n(0xff, 30));
                }
                if is_a {
                    counted.fetch_add(1, Ordering::SeqCst);
                }
                let socket = socket.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(answer.delay).await;
                    let _ = socket.send_to(&reply, from).await;
                });
            }
        });
        Ok(DnsServer {
            addr,
            questions,
            task,
        })
    }

    /// The A questions asked so far.
    pub fn a_questions(&self) -> usize {
        self.questions.load(Ordering::SeqCst)
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

const TYPE_A: u16 = 1;
const TYPE_SOA: u16 = 6;
const CLASS_IN: u16 = 1;

/// The reply to one query message and whether it asked for an A record; `None` for anything
/// that is not a single well-formed question (it is dropped, as a server would).
fn reply(query: &[u8], answer: &DnsAnswer) -> Option<(Vec<u8>, bool)> {
    if query.len() < 12 || query[2] & 0x80 != 0 {
        return None;
    }
    let questions = u16::from_be_bytes([query[4], query[5]]);
    if questions != 1 {
        return None;
    }
    // The question: labels up to the root, then type and class.
    let mut i = 12;
    loop {
        let len = *query.get(i)? as usize;
        if len & 0xc0 != 0 {
            return None;
        }
        i += 1 + len;
        if len == 0 {
            break;
        }
    }
    let question_end = i + 4;
    let question = query.get(12..question_end)?;
    let qtype = u16::from_be_bytes([query[i], query[i + 1]]);
    let qclass = u16::from_be_bytes([query[i + 2], query[i + 3]]);
    let is_a = qtype == TYPE_A && qclass == CLASS_IN;
    let mut out = Vec::with_capacity(question_end + 16);
    out.extend_from_slice(&query[0..2]);
    // QR, the query's RD, RA; no error.
    out.push(0x80 | (query[2] & 0x01));
    out.push(0x80);
    out.extend_from_slice(&1u16.to_be_bytes());
    out.extend_from_slice(&u16::from(is_a).to_be_bytes());
    out.extend_from_slice(&u16::from(!is_a).to_be_bytes());
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(question);
    if !is_a {
        // Authority: the SOA, its names pointing at the question's, every number the TTL.
        out.extend_from_slice(&[0xc0, 0x0c]);
        out.extend_from_slice(&TYPE_SOA.to_be_bytes());
        out.extend_from_slice(&CLASS_IN.to_be_bytes());
        out.extend_from_slice(&answer.ttl.to_be_bytes());
        out.extend_from_slice(&24u16.to_be_bytes());
        out.extend_from_slice(&[0xc0, 0x0c, 0xc0, 0x0c]);
        for _ in 0..5 {
            out.extend_from_slice(&answer.ttl.to_be_bytes());
        }
    }
    if is_a {
        // The name as a pointer to the question's, at offset 12.
        out.extend_from_slice(&[0xc0, 0x0c]);
        out.extend_from_slice(&TYPE_A.to_be_bytes());
        out.extend_from_slice(&CLASS_IN.to_be_bytes());
        out.extend_from_slice(&answer.ttl.to_be_bytes());
        out.extend_from_slice(&4u16.to_be_bytes());
        out.extend_from_slice(&answer.address.octets());
    }
    Some((out, is_a))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A query for `llm.test` of `qtype`, id 0x1234, recursion desired.
    fn query(qtype: u16) -> Vec<u8> {
        let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        q.extend_from_slice(b"\x03llm\x04test\x00");
        q.extend_from_slice(&qtype.to_be_bytes());
        q.extend_from_slice(&CLASS_IN.to_be_bytes());
        q
    }

    const ANSWER: DnsAnswer = DnsAnswer {
        address: Ipv4Addr::new(127, 0, 0, 1),
        delay: Duration::ZERO,
        ttl: 300,
        garbage: false,
    };

    #[test]
    fn an_a_question_gets_the_address_with_its_ttl() {
        let (r, is_a) = reply(&query(TYPE_A), &ANSWER).unwrap();
        assert!(is_a);
        assert_eq!(&r[0..2], &[0x12, 0x34]);
        assert_eq!(r[2] & 0x80, 0x80, "a response");
        assert_eq!(&r[6..8], &[0, 1], "one answer");
        let tail = &r[r.len() - 10..];
        assert_eq!(&tail[0..4], &300u32.to_be_bytes());
        assert_eq!(&tail[4..6], &[0, 4]);
        assert_eq!(&tail[6..], &[127, 0, 0, 1]);
    }

    #[test]
    fn an_aaaa_question_gets_no_records_and_garbage_gets_nothing() {
        let (r, is_a) = reply(&query(28), &ANSWER).unwrap();
        assert!(!is_a);
        assert_eq!(&r[6..8], &[0, 0], "no answer");
        assert_eq!(&r[8..10], &[0, 1], "an SOA");
        assert_eq!(&r[r.len() - 4..], &300u32.to_be_bytes(), "its minimum TTL");
        assert!(reply(&[1, 2, 3], &ANSWER).is_none());
        let mut truncated = query(TYPE_A);
        truncated.truncate(16);
        assert!(reply(&truncated, &ANSWER).is_none());
    }
}
