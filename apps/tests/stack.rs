//! `stack` starts the processes, and SIGTERM stops all of them.

mod common;

use common::{get, Server};

#[test]
fn stack_starts_the_backend_and_stops_everything_on_sigterm() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let root = env!("CARGO_MANIFEST_DIR");
    let www = format!("{root}/../www");
    let st = format!("{root}/../static");
    let mut stack = Server::start_waiting_for(
        env!("CARGO_BIN_EXE_stack"),
        &[
            "--ip",
            "127.0.0.1",
            "--backend-port",
            &port.to_string(),
            "--www",
            &www,
            "--static",
            &st,
        ],
        "backend listening on",
    );
    let r = get(port, "/");
    assert_eq!(r.status(), 200);
    assert!(String::from_utf8_lossy(&r.body).contains("weaprous"));
    assert_eq!(get(port, "/css/styles.css").status(), 200);
    stack.signal("-TERM");
    let status = stack.child.wait().unwrap();
    assert!(status.success(), "stack exit {status}");
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "the backend stopped too"
    );
}
