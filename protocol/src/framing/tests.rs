use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use tarpc::context;
use tokio::io::AsyncWriteExt;

use super::*;
use crate::Document;

/// A request as a tarpc client encodes it, with its deadline `wanted` from now.
fn request_frame(id: u64, message: &str, wanted: Duration) -> Vec<u8> {
    let mut ctx = context::current();
    ctx.deadline = Instant::now() + wanted;
    let request = ClientMessage::Request(Request {
        context: ctx,
        id,
        message: message.to_string(),
    });
    options().serialize(&request).unwrap()
}

/// The same request with a deadline no `Instant` can hold: written by hand, as a hostile
/// client would (a tarpc client cannot even represent it).
fn request_with_deadline_secs(secs: u64) -> Vec<u8> {
    #[derive(Serialize)]
    enum Wire {
        Request {
            context: (Duration, tarpc::trace::Context),
            id: u64,
            message: String,
        },
    }
    let message = Wire::Request {
        context: (
            Duration::new(secs, 999_999_999),
            tarpc::trace::Context::default(),
        ),
        id: 7,
        message: "hello".into(),
    };
    options().serialize(&message).unwrap()
}

#[test]
fn the_server_reads_what_a_tarpc_client_writes() {
    let frame = request_frame(41, "status", Duration::from_secs(30));
    let Ok(ClientMessage::Request(request)) = ServerSide::<String, ()>::decode(&frame) else {
        panic!("not a request")
    };
    assert_eq!((request.id, request.message.as_str()), (41, "status"));
    let left = request.context.deadline - Instant::now();
    assert!(left > Duration::from_secs(29) && left <= Duration::from_secs(30));
}

#[test]
fn an_absurd_deadline_is_clamped_not_a_panic() {
    // tarpc's own decoding computes `Instant::now() + u64::MAX s` here and panics.
    let frame = request_with_deadline_secs(u64::MAX);
    let Ok(ClientMessage::Request(request)) = ServerSide::<String, ()>::decode(&frame) else {
        panic!("not a request")
    };
    assert_eq!(request.id, 7);
    assert!(request.context.deadline <= Instant::now() + MAX_DEADLINE);
    assert!(request.context.deadline > Instant::now() + MAX_DEADLINE - Duration::from_secs(5));
}

#[test]
fn garbage_is_an_error() {
    for frame in [&b""[..], b"\x05", b"\x00\xff\xff\xff\xff\xff\xff"] {
        let e = ServerSide::<String, ()>::decode(frame).expect_err("an error");
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
    }
}

#[test]
fn a_reply_too_large_becomes_an_error_reply() {
    let reply = Response {
        request_id: 3,
        message: Ok(vec![0u8; MAX_REPLY_BYTES]),
    };
    let frame = ServerSide::<(), Vec<u8>>::encode(&reply).unwrap();
    assert!(frame.len() < 200);
    let decoded = ClientSide::<(), Vec<u8>>::decode(&frame).unwrap();
    assert_eq!(decoded.request_id, 3);
    let e = decoded.message.unwrap_err();
    assert!(
        e.detail.contains("more than the 33554432 a reply may take"),
        "{}",
        e.detail
    );
    // A reply that fits goes as it is.
    let small = Response {
        request_id: 4,
        message: Ok(vec![1u8; 10]),
    };
    let frame = ServerSide::<(), Vec<u8>>::encode(&small).unwrap();
    assert_eq!(ClientSide::<(), Vec<u8>>::decode(&frame).unwrap(), small);
}

#[test]
fn a_request_too_large_is_not_sent() {
    let mut ctx = context::current();
    ctx.deadline = Instant::now() + Duration::from_secs(1);
    let request = ClientMessage::Request(Request {
        context: ctx,
        id: 1,
        message: "x".repeat(MAX_REQUEST_BYTES),
    });
    let e = ClientSide::<String, ()>::encode(&request).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    assert!(
        e.to_string().contains("more than the 1048576 topicd reads"),
        "{e}"
    );
}

#[test]
fn document_bytes_bounds_the_encoding_of_a_document() {
    for (n, id) in [(0, 0), (1, 7), (300, u32::MAX), (70_000, u32::MAX)] {
        let doc = Document {
            terms: vec![id; n],
            weights: vec![0.5; n],
        };
        let encoded = options().serialize(&doc).unwrap().len();
        assert!(encoded <= document_bytes(n), "{n} entries: {encoded} bytes");
    }
}

#[tokio::test]
async fn a_frame_announced_too_large_is_refused_on_its_length() {
    let (mut client, server) = tokio::io::duplex(64);
    let mut transport = server_transport::<_, String, ()>(server);
    // The length of a 32 MiB frame and nothing else: no need to wait for the body.
    client
        .write_all(&(32u32 << 20).to_be_bytes())
        .await
        .unwrap();
    let e = transport.next().await.unwrap().unwrap_err();
    assert!(
        e.to_string()
            .contains("a frame of 33554432 bytes announced, more than the 1048576 accepted"),
        "{e}"
    );
}

#[tokio::test]
async fn both_ends_talk() {
    let (client, server) = tokio::io::duplex(1 << 16);
    let mut server = server_transport::<_, String, String>(server);
    let mut client = client_transport::<_, String, String>(client);
    let mut ctx = context::current();
    ctx.deadline = Instant::now() + Duration::from_secs(5);
    let request = ClientMessage::Request(Request {
        context: ctx,
        id: 9,
        message: "ping".to_string(),
    });
    client.send(request).await.unwrap();
    let Some(Ok(ClientMessage::Request(received))) = server.next().await else {
        panic!("no request")
    };
    assert_eq!(received.message, "ping");
    let reply = Response {
        request_id: received.id,
        message: Ok("pong".to_string()),
    };
    server.send(reply.clone()).await.unwrap();
    assert_eq!(client.next().await.unwrap().unwrap(), reply);
}

#[tokio::test]
async fn a_refused_client_reads_why() {
    let (client, server) = tokio::io::duplex(1 << 16);
    let mut refusing = refusing_transport(server);
    let mut client = client_transport::<_, String, String>(client);
    let mut ctx = context::current();
    ctx.deadline = Instant::now() + Duration::from_secs(5);
    let request = ClientMessage::Request(Request {
        context: ctx,
        id: 12,
        message: "a request the refuser does not read".to_string(),
    });
    client.send(request).await.unwrap();
    let Some(Ok(ClientMessage::Request(received))) = refusing.next().await else {
        panic!("no request")
    };
    assert_eq!(received.id, 12);
    let refusal = Response {
        request_id: 12,
        message: Err(ServerError::new(io::ErrorKind::Other, "busy".into())),
    };
    refusing.send(refusal).await.unwrap();
    let reply = client.next().await.unwrap().unwrap();
    assert_eq!(reply.request_id, 12);
    assert_eq!(reply.message.unwrap_err().detail, "busy");
}

#[tokio::test]
async fn frames_that_arrive_in_pieces_are_read_whole() {
    // A pipe of 7 bytes: every frame arrives in pieces, and lengths straddle reads.
    let (client, server) = tokio::io::duplex(7);
    let mut server = server_transport::<_, String, String>(server);
    let mut client = client_transport::<_, String, String>(client);
    let sender = tokio::spawn(async move {
        for id in 0..20 {
            let mut ctx = context::current();
            ctx.deadline = Instant::now() + Duration::from_secs(5);
            let request = ClientMessage::Request(Request {
                context: ctx,
                id,
                message: "x".repeat(id as usize * 50),
            });
            client.send(request).await.unwrap();
        }
    });
    for id in 0..20 {
        let Some(Ok(ClientMessage::Request(received))) = server.next().await else {
            panic!("no request {id}")
        };
        assert_eq!(
            (received.id, received.message.len()),
            (id, id as usize * 50)
        );
    }
    sender.await.unwrap();
}

#[test]
fn a_busy_refusal_is_recognised_by_its_text() {
    // tarpc does not carry every io::ErrorKind across (ConnectionRefused arrives as
    // ConnectionAborted), so the refusal is recognised by its text.
    let refusal = busy_refusal(7);
    assert!(is_busy_refusal(&refusal));
    assert!(
        refusal.detail.contains("maximum of 7 connections"),
        "{}",
        refusal.detail
    );
    let reply: Response<()> = Response {
        request_id: 1,
        message: Err(refusal),
    };
    let frame = RefusingSide::encode(&reply).unwrap();
    let back = ClientSide::<(), ()>::decode(&frame).unwrap();
    assert!(is_busy_refusal(&back.message.unwrap_err()));
    assert!(!is_busy_refusal(&ServerError::new(
        io::ErrorKind::Other,
        "x".into()
    )));
}
