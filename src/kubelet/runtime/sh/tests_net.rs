//! `wget`, `nc`, `id` and `whoami` against real sockets on the machine's loopback (small
//! servers the tests run) and the credentials of a fake container.

use super::tests::Mem;
use super::*;
use std::sync::Mutex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A shell with the machine's loopback as its network.
fn net() -> Mem {
    Mem {
        net: true,
        ..Mem::new()
    }
}

/// Run `src` on `m`: its status.
async fn run_on(m: &Mem, src: &str) -> i32 {
    let script = Script::parse(src).unwrap_or_else(|e| panic!("parse {src:?}: {e}"));
    run(&script, m).await
}

/// A port nothing listens on.
async fn closed_port() -> u16 {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap().port()
}

/// An HTTP server answering each connection with the next of `answers` (then closing it);
/// the requests it got, as received.
async fn http_server(answers: Vec<Vec<u8>>) -> (u16, Arc<Mutex<Vec<String>>>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    tokio::spawn(async move {
        for answer in answers {
            let Ok((mut s, _)) = l.accept().await else {
                return;
            };
            let mut req = Vec::new();
            let mut buf = [0u8; 4096];
            // The head, then as much body as Content-Length says.
            loop {
                let n = s.read(&mut buf).await.unwrap_or(0);
                if n == 0 {
                    break;
                }
                req.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&req).to_string();
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let want = head
                        .lines()
                        .find_map(|l| l.strip_prefix("Content-Length: "))
                        .and_then(|v| v.parse::<usize>().ok())
                        .unwrap_or(0);
                    if body.len() >= want {
                        break;
                    }
                }
            }
            log.lock()
                .unwrap()
                .push(String::from_utf8_lossy(&req).into_owned());
            let _ = s.write_all(&answer).await;
            let _ = s.shutdown().await;
        }
    });
    (port, seen)
}

fn ok(body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\nServer: test\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

const BAR: &str = "|********************************|";

#[tokio::test]
async fn wget_fetches_a_page_to_standard_output_as_busybox_does() {
    let (port, seen) = http_server(vec![ok("<h1>Welcome to nginx!</h1>\n"); 2]).await;
    let m = net();
    let status = run_on(&m, &format!("wget -O - http://127.0.0.1:{port}/index.html")).await;
    assert_eq!(status, 0, "{}", m.err());
    assert_eq!(m.out(), "<h1>Welcome to nginx!</h1>\n");
    assert_eq!(
        m.err(),
        format!(
            "Connecting to 127.0.0.1:{port} (127.0.0.1:{port})\nwriting to stdout\n\
             -                    100% {BAR}    27  0:00:00 ETA\nwritten to stdout\n"
        )
    );
    assert_eq!(
        seen.lock().unwrap()[0],
        format!(
            "GET /index.html HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: Wget\r\nConnection: close\r\n\r\n"
        )
    );
    // Quiet: only the page. `localhost` is the container's own address.
    let m = net();
    let status = run_on(&m, &format!("wget -T 1 -qO- localhost:{port}")).await;
    assert_eq!(
        (status, m.out(), m.err()),
        (0, "<h1>Welcome to nginx!</h1>\n".into(), String::new())
    );
    assert!(seen.lock().unwrap()[1]
        .starts_with(&format!("GET / HTTP/1.1\r\nHost: localhost:{port}\r\n")));
}

#[tokio::test]
async fn wget_saves_a_file_once_and_refuses_to_overwrite_it() {
    let (port, _) = http_server(vec![ok("hello\n"); 2]).await;
    let m = net();
    m.dir("/tmp");
    let src = format!("cd /tmp && wget http://127.0.0.1:{port}/; echo $?; wget -q http://127.0.0.1:{port}/; echo $?");
    run_on(&m, &src).await;
    assert_eq!(m.file("/tmp/index.html").as_deref(), Some(&b"hello\n"[..]));
    assert_eq!(m.out(), "0\n1\n");
    assert_eq!(
        m.err(),
        format!(
            "Connecting to 127.0.0.1:{port} (127.0.0.1:{port})\nsaving to 'index.html'\n\
             index.html           100% {BAR}     6  0:00:00 ETA\n'index.html' saved\n\
             wget: can't open 'index.html': File exists\n"
        )
    );
}

#[tokio::test]
async fn wget_reports_refusals_errors_timeouts_and_unknown_names() {
    let (port, _) = http_server(vec![
        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_vec()
    ])
    .await;
    let closed = closed_port().await;
    let m = net();
    let src = format!(
        "wget -q http://127.0.0.1:{port}/missing; echo $?
         wget -q -O - http://127.0.0.1:{closed}/; echo $?
         wget -T 1 -q -O - http://10.96.0.10/; echo $?
         wget -q -O - http://web.default.svc.cluster.local/; echo $?
         wget -q -O - gopher://x/; echo $?"
    );
    run_on(&m, &src).await;
    assert_eq!(m.out(), "1\n1\n1\n1\n1\n");
    assert_eq!(
        m.err(),
        "wget: server returned error: HTTP/1.1 404 Not Found\n\
         wget: can't connect to remote host (127.0.0.1): Connection refused\n\
         wget: download timed out\n\
         wget: bad address 'web.default.svc.cluster.local'\n\
         wget: not an http or ftp url: gopher://x/\n"
    );
}

#[tokio::test]
async fn wget_resolves_names_from_etc_hosts_and_follows_redirects() {
    // Where the first server sends the client: a relative redirect, then the page.
    let (port2, seen2) = http_server(vec![
        b"HTTP/1.1 301 Moved\r\nLocation: /c\r\n\r\n".to_vec(),
        ok("done\n"),
    ])
    .await;
    let (port, seen) = http_server(vec![format!(
        "HTTP/1.1 302 Found\r\nLocation: http://web:{port2}/b\r\nContent-Length: 0\r\n\r\n"
    )
    .into_bytes()])
    .await;
    let m = net();
    m.put(
        "/etc/hosts",
        "127.0.0.1\tlocalhost\n127.0.0.1\tweb web.default\n",
    );
    let status = run_on(&m, &format!("wget -S -O - http://web.default:{port}/a")).await;
    assert_eq!(status, 0, "{}", m.err());
    assert_eq!(m.out(), "done\n");
    let err = m.err();
    assert!(
        err.starts_with(&format!(
            "Connecting to web.default:{port} (127.0.0.1:{port})\n  HTTP/1.1 302 Found\n  Location: http://web:{port2}/b\n\
             Connecting to web:{port2} (127.0.0.1:{port2})\n  HTTP/1.1 301 Moved\n  Location: /c\n  HTTP/1.1 200 OK\n  Server: test\n"
        )),
        "{err}"
    );
    assert!(
        err.contains("  Connection: close\n  \nwriting to stdout\n"),
        "{err}"
    );
    assert!(seen.lock().unwrap()[0].starts_with("GET /a HTTP/1.1\r\nHost: web.default:"));
    let second = seen2.lock().unwrap().clone();
    assert!(second[0].starts_with(&format!("GET /b HTTP/1.1\r\nHost: web:{port2}\r\n")));
    assert!(second[1].starts_with(&format!("GET /c HTTP/1.1\r\nHost: web:{port2}\r\n")));
}

#[tokio::test]
async fn wget_spider_post_headers_and_chunked_bodies() {
    let (port, seen) = http_server(vec![
        ok("x"),
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n7;x=y\r\n world\n\r\n0\r\n\r\n"
            .to_vec(),
        ok("posted"),
    ])
    .await;
    let m = net();
    let src = format!(
        "wget --spider http://127.0.0.1:{port}/; echo $?
         wget -q -O - http://127.0.0.1:{port}/chunks
         wget -q -O - -U probe --header 'Host: example' --header 'X-A: 1' --post-data 'a=1&b=2' http://127.0.0.1:{port}/form; echo"
    );
    run_on(&m, &src).await;
    assert_eq!(m.out(), "0\nhello world\nposted\n");
    assert_eq!(
        m.err(),
        format!("Connecting to 127.0.0.1:{port} (127.0.0.1:{port})\nremote file exists\n")
    );
    let reqs = seen.lock().unwrap().clone();
    assert_eq!(
        reqs[2],
        "POST /form HTTP/1.1\r\nUser-Agent: probe\r\nConnection: close\r\nHost: example\r\nX-A: 1\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 7\r\n\r\na=1&b=2"
    );
}

/// A TCP server that answers what it reads in upper case, then closes when the client has.
async fn upper_server() -> u16 {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                while let Ok(n) = s.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    let up = buf[..n].to_ascii_uppercase();
                    if s.write_all(&up).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    port
}

#[tokio::test]
async fn nc_copies_standard_input_to_a_peer_and_its_answer_back() {
    let port = upper_server().await;
    let closed = closed_port().await;
    let m = net();
    let src = format!(
        "echo hello | nc 127.0.0.1 {port}; echo $?
         nc -z 127.0.0.1 {port}; echo open $?
         nc -z -w 1 127.0.0.1 {closed}; echo closed $?
         nc -zv 127.0.0.1 {port}
         nc -zv 127.0.0.1 {closed}
         nc -zvv 127.0.0.1 {closed}
         nc -zv -w 1 10.96.0.1 80; echo unroutable $?
         nc nowhere 80; echo $?"
    );
    run_on(&m, &src).await;
    assert_eq!(m.out(), "HELLO\n0\nopen 0\nclosed 1\nunroutable 1\n1\n");
    assert_eq!(
        m.err(),
        format!(
            "127.0.0.1 (127.0.0.1:{port}) open\n\
             nc: 127.0.0.1 (127.0.0.1:{closed}): Connection refused\nsent 0, rcvd 0\n\
             nc: 10.96.0.1 (10.96.0.1:80): Connection timed out\n\
             nc: bad address 'nowhere'\n"
        )
    );
}

#[tokio::test]
async fn nc_speaks_udp() {
    let server = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let port = server.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut buf = [0u8; 1024];
        while let Ok((n, peer)) = server.recv_from(&mut buf).await {
            if &buf[..n] == b"hostname\n" {
                let _ = server.send_to(b"netexec-server", peer).await;
            }
        }
    });
    let m = net();
    let status = run_on(&m, &format!("echo hostname | nc -u -w 1 127.0.0.1 {port}")).await;
    assert_eq!(
        (status, m.out(), m.err()),
        (0, "netexec-server".into(), String::new())
    );
}

#[tokio::test]
async fn nc_listens_for_a_peer() {
    let m = Arc::new(net());
    let shell = Arc::clone(&m);
    let listening = tokio::spawn(async move { run_on(&shell, "echo bye | nc -lv -p 0").await });
    // The port it listens on, from its message.
    let port = loop {
        let err = m.err();
        if let Some(rest) = err.strip_prefix("listening on [::]:") {
            if let Some(p) = rest.split(' ').next().and_then(|p| p.parse::<u16>().ok()) {
                break p;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    };
    let mut c = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let local = c.peer_addr().unwrap();
    let me = c.local_addr().unwrap();
    c.write_all(b"hi there\n").await.unwrap();
    c.shutdown().await.unwrap();
    let mut answer = String::new();
    c.read_to_string(&mut answer).await.unwrap();
    assert_eq!(answer, "bye\n");
    assert_eq!(listening.await.unwrap(), 0);
    assert_eq!(m.out(), "hi there\n");
    assert!(
        m.err().ends_with(&format!(
            "connect to [::ffff:{}]:{} from [::ffff:{}]:{} ([::ffff:{}]:{})\n",
            local.ip(),
            local.port(),
            me.ip(),
            me.port(),
            me.ip(),
            me.port()
        )),
        "{}",
        m.err()
    );
}

#[tokio::test]
async fn nc_runs_a_program_on_the_connection() {
    let m = Arc::new(net());
    let shell = Arc::clone(&m);
    let listening = tokio::spawn(async move { run_on(&shell, "nc -lv -p 0 -e tr a-z A-Z").await });
    let port = loop {
        if let Some(p) = m
            .err()
            .strip_prefix("listening on [::]:")
            .and_then(|r| r.split(' ').next()?.parse::<u16>().ok())
        {
            break p;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    };
    let mut c = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    c.write_all(b"shout\n").await.unwrap();
    c.shutdown().await.unwrap();
    let mut answer = String::new();
    c.read_to_string(&mut answer).await.unwrap();
    assert_eq!(answer, "SHOUT\n");
    assert_eq!(listening.await.unwrap(), 0);
}

#[test]
fn id_and_whoami_show_the_container_s_user_and_groups() {
    let m = Mem {
        creds: Some(Credentials {
            uid: 1000,
            gid: 3000,
            groups: vec![4000, 2000],
        }),
        ..Mem::new()
    };
    super::tests::sh_on(
        &m,
        "id; id -u; id -g; id -G; id -un; echo $?; whoami; echo $?",
    );
    assert_eq!(
        m.out(),
        "uid=1000 gid=3000 groups=2000,3000,4000\n1000\n3000\n3000 2000 4000\n1000\n1\n1\n"
    );
    assert_eq!(m.err(), "id: unknown ID 1000\nwhoami: unknown uid 1000\n");
    // runAsUser alone: group 0; root's supplementary groups from the pod come after wheel.
    let m = Mem {
        creds: Some(Credentials {
            uid: 1001,
            gid: 0,
            groups: vec![],
        }),
        ..Mem::new()
    };
    super::tests::sh_on(&m, "id");
    assert_eq!(m.out(), "uid=1001 gid=0(root) groups=0(root)\n");
    let m = Mem {
        creds: Some(Credentials {
            uid: 0,
            gid: 0,
            groups: vec![5678, 1234],
        }),
        ..Mem::new()
    };
    super::tests::sh_on(&m, "id; id -G; id -Gn; groups; whoami; id nobody");
    assert_eq!(
        m.out(),
        "uid=0(root) gid=0(root) groups=0(root),10(wheel),1234,5678\n0 10 1234 5678\n\
         root wheel 1234 5678\nroot wheel 1234 5678\nroot\nuid=65534(nobody) gid=65534(nogroup) groups=65534(nogroup)\n"
    );
    assert_eq!(
        m.err(),
        "id: unknown ID 1234\nid: unknown ID 5678\ngroups: unknown ID 1234\ngroups: unknown ID 5678\n"
    );
}

#[test]
fn without_a_network_the_clients_fail_as_on_a_machine_without_one() {
    let m = Mem::new();
    super::tests::sh_on(
        &m,
        "wget -q http://127.0.0.1/; echo $?; nc -z 127.0.0.1 80; echo $?; nc -zv 127.0.0.1 80",
    );
    assert_eq!(m.out(), "1\n1\n");
    assert_eq!(
        m.err(),
        "wget: can't connect to remote host (127.0.0.1): Network is unreachable\n\
         nc: 127.0.0.1 (127.0.0.1:80): Network is unreachable\n"
    );
}

#[tokio::test]
async fn wget_refuses_malformed_answers_with_busybox_s_words() {
    let long = format!(
        "HTTP/1.1 200 OK\r\nX-Long: {}\r\nContent-Length: 2\r\n\r\nok",
        "y".repeat(9000)
    );
    let (port, _) = http_server(vec![
        b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n".to_vec(),
        b"HTTP/1.1 200 OK\r\nbad header\r\n\r\n".to_vec(),
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: GZip\r\n\r\n".to_vec(),
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\n".to_vec(),
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc".to_vec(),
        Vec::new(),
        long.into_bytes(),
        b"HTTP/1.1 200 OK\r\n\r\nno length, read to the end".to_vec(),
    ])
    .await;
    let m = net();
    let mut src = String::new();
    for _ in 0..8 {
        src.push_str(&format!(
            "wget -q -O - http://127.0.0.1:{port}/; echo \" $?\"\n"
        ));
    }
    run_on(&m, &src).await;
    assert_eq!(
        m.out(),
        " 1\n 1\n 1\n 1\nabc 1\n 1\nok 0\nno length, read to the end 0\n"
    );
    assert_eq!(
        m.err(),
        "wget: content-length x is garbage\nwget: bad header line: bad header\n\
         wget: transfer encoding 'gzip' is not supported\nwget: bad chunk length '-5'\n\
         wget: connection closed prematurely\nwget: error getting response\n"
    );
}

#[test]
fn odd_command_lines_get_answers_not_panics() {
    for line in [
        "wget",
        "wget -O",
        "wget --",
        "wget --spider",
        "wget http://[",
        "wget http://[::1",
        "wget http://h:99999/",
        "wget http://@/",
        "wget http://:80/",
        "wget -T x http://h/",
        "wget -T 99999999999 h",
        "wget --post-data a --post-file b h",
        "wget --nope h",
        "wget -qO- 'http://%zz@h/'",
        "wget -P / -O - ''",
        "nc",
        "nc -e",
        "nc -l -e",
        "nc [::1",
        "nc 1.2.3.4 -1",
        "nc -w x h 1",
        "nc -i 0 h 1",
        "nc a b c",
        "nc -lu",
        "nc -z 999.1.1.1 1",
        "nc -p 70000 h 1",
        "nc -s nowhere h 1",
        "id -x",
        "id a b",
        "id -n",
        "id nosuch",
        "whoami x",
        "groups a b",
        "nc -zv 0x7f.1 99999",
    ] {
        let m = Mem::new();
        let status = super::tests::sh_on(&m, line);
        assert!((1..=127).contains(&status), "{line}: {status} {}", m.err());
        assert!(!m.err().is_empty(), "{line}: no message");
    }
}
