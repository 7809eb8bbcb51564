//! `stack` starts the processes, and SIGTERM stops all of them.

mod common;

use common::{get, Server};

#[test]
fn stack_starts_the_backend_and_the_proxy_and_stops_everything_on_sigterm() {
    let free = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };
    let (port, proxy_port) = (free(), free());
    let dir = common::TempDir::new("stack");
    let conf = dir.path().join("proxy.conf");
    std::fs::write(
        &conf,
        format!("host \"app1.local\" {{ proxy_pass http://127.0.0.1:{port}; }}\n"),
    )
    .unwrap();
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
            "--proxy-port",
            &proxy_port.to_string(),
            "--config",
            conf.to_str().unwrap(),
        ],
        "backend listening on",
    );
    stack.wait_line("proxy listening on");
    let r = get(port, "/");
    assert_eq!(r.status(), 200);
    assert!(String::from_utf8_lossy(&r.body).contains("weaprous"));
    assert_eq!(get(port, "/css/styles.css").status(), 200);
    let via = common::request(
        proxy_port,
        "GET /css/styles.css HTTP/1.1\r\nHost: app1.local\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(
        via.status(),
        200,
        "the proxy routes app1.local to the backend"
    );
    assert_eq!(via.header("via").as_deref(), Some("1.1 weaprous"));
    stack.signal("-TERM");
    let status = stack.child.wait().unwrap();
    assert!(status.success(), "stack exit {status}");
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "the backend stopped too"
    );
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", proxy_port)).is_err(),
        "the proxy stopped too"
    );
}
