//! `exec` and `attach` sessions over a [`Conn`]: the options as the kubelet reads them, the
//! process run through the runtime, and the outcome on the error channel as upstream writes it
//! (a `Status` from v4 on: `Success`, `NonZeroExitCode` with the exit code as its cause, or an
//! internal error; plain text before v4).

use std::sync::Arc;

use bytes::Bytes;
use serde_json::json;
use tokio::sync::mpsc;

use super::{onlcr, Channel, Conn, Output, Wants};
use crate::kubelet::runtime::log::Stream;
use crate::kubelet::runtime::{ExecIo, Runtime, RuntimeError};

/// The protocol versions the kubelet serves over SPDY (upstream's
/// `SupportedStreamingProtocols`), and over WebSocket (v5 too, as the apiserver's translator).
pub(crate) const SPDY_PROTOCOLS: &[&str] = &[super::V4, super::V3, super::V2, super::V1];
/// See [`SPDY_PROTOCOLS`].
pub(crate) const WEBSOCKET_PROTOCOLS: &[&str] =
    &[super::V5, super::V4, super::V3, super::V2, super::V1];

/// The options of an exec or attach request, from the kubelet's query parameters (`input`,
/// `output`, `error`, `tty` as `1`, and `command` repeated), as upstream's `NewOptions` reads
/// them: with a TTY there is no separate stderr.
pub(crate) fn options(pairs: &[(String, String)]) -> Result<(Vec<String>, Wants), String> {
    let flag = |key: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == key)
            .is_some_and(|(_, v)| v == "1")
    };
    let tty = flag("tty");
    let wants = Wants {
        stdin: flag("input"),
        stdout: flag("output"),
        stderr: flag("error") && !tty,
        tty,
    };
    if !wants.stdin && !wants.stdout && !wants.stderr {
        return Err("you must specify at least 1 of stdin, stdout, stderr".into());
    }
    let command = pairs
        .iter()
        .filter(|(k, _)| k == "command")
        .map(|(_, v)| v.clone())
        .collect();
    Ok((command, wants))
}

/// How an exec ended, as the error channel says it for `protocol`.
fn outcome(protocol: &str, argv: &[String], result: &Result<i32, RuntimeError>) -> Vec<u8> {
    let v4 = matches!(protocol, super::V4 | super::V5);
    let failure = |message: String, reason: &str, details: serde_json::Value| {
        let mut status =
            json!({"metadata": {}, "status": "Failure", "message": message, "reason": reason});
        if !details.is_null() {
            status["details"] = details;
        }
        if reason == "InternalError" {
            status["code"] = json!(500);
        }
        status
    };
    match result {
        Ok(0) => {
            if v4 {
                serde_json::to_vec(&json!({"metadata": {}, "status": "Success"}))
                    .unwrap_or_default()
            } else {
                Vec::new()
            }
        }
        Ok(code) => {
            // containerd's error, wrapped by the kubelet (Go's %v of the argv).
            let message = format!(
                "command terminated with non-zero exit code: error executing command [{}], exit code {code}",
                argv.join(" ")
            );
            if v4 {
                let status = failure(
                    message,
                    "NonZeroExitCode",
                    json!({"causes": [{"reason": "ExitCode", "message": code.to_string()}]}),
                );
                serde_json::to_vec(&status).unwrap_or_default()
            } else {
                message.into_bytes()
            }
        }
        Err(e) => {
            let message = format!("error executing command in container: {e}");
            if v4 {
                let status = failure(
                    format!("Internal error occurred: {message}"),
                    "InternalError",
                    json!({"causes": [{"message": message}]}),
                );
                serde_json::to_vec(&status).unwrap_or_default()
            } else {
                message.into_bytes()
            }
        }
    }
}

/// Run `argv` in container `id` over `conn`, then write the outcome and end the session.
pub(crate) async fn exec(
    conn: Conn,
    runtime: Arc<dyn Runtime>,
    id: String,
    argv: Vec<String>,
    tty: bool,
) {
    let Conn {
        protocol,
        stdin,
        resize,
        out,
        gone,
    } = conn;
    // Terminal sizes are read and dropped: the simulated processes draw no screens.
    if let Some(mut resize) = resize {
        tokio::spawn(async move { while resize.recv().await.is_some() {} });
    }
    let stdin = match stdin {
        Some(keys) if tty => Some(terminal(keys, out.clone())),
        other => other,
    };
    let sink = out.clone();
    let output = Arc::new(move |stream: Stream, data: &[u8]| {
        if tty {
            // One terminal: stderr shows on it too.
            sink.send(Channel::Stdout, &onlcr(data));
        } else {
            let channel = match stream {
                Stream::Stdout => Channel::Stdout,
                Stream::Stderr => Channel::Stderr,
            };
            sink.send(channel, data);
        }
    });
    let io = ExecIo {
        stdin,
        tty,
        output,
        cancel: gone.clone(),
    };
    let result = runtime.exec_session(&id, &argv, io).await;
    if gone.is_cancelled() {
        return;
    }
    out.send(Channel::Error, &outcome(&protocol, &argv, &result));
}

/// A terminal in canonical mode between the client's keystrokes and the process: what is typed
/// is echoed (a newline as CR LF), DEL/BS erase, `^U` erases the line, `^C` drops it, lines are
/// handed over whole, and `^D` at the start of a line is an end of input (an empty chunk).
fn terminal(mut keys: mpsc::Receiver<Bytes>, out: Output) -> mpsc::Receiver<Bytes> {
    const ERASE: &[u8] = b"\x08 \x08";
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        let mut line: Vec<u8> = Vec::new();
        while let Some(chunk) = keys.recv().await {
            for &b in chunk.iter() {
                let ready = match b {
                    b'\r' | b'\n' => {
                        out.send(Channel::Stdout, b"\r\n");
                        line.push(b'\n');
                        Some(std::mem::take(&mut line))
                    }
                    0x7f | 0x08 => {
                        if line.pop().is_some() {
                            out.send(Channel::Stdout, ERASE);
                        }
                        None
                    }
                    0x15 => {
                        out.send(Channel::Stdout, &ERASE.repeat(line.len()));
                        line.clear();
                        None
                    }
                    0x03 => {
                        out.send(Channel::Stdout, b"^C\r\n");
                        line.clear();
                        None
                    }
                    0x04 => Some(std::mem::take(&mut line)),
                    _ => {
                        out.send(Channel::Stdout, &[b]);
                        line.push(b);
                        None
                    }
                };
                if let Some(ready) = ready {
                    if tx.send(Bytes::from(ready)).await.is_err() {
                        return;
                    }
                }
            }
        }
        if !line.is_empty() {
            let _ = tx.send(Bytes::from(line)).await;
        }
    });
    rx
}

/// Attach to container `id`'s main process over `conn`: what it writes from now on, until it
/// exits or the client detaches. Input is accepted and dropped (the simulated images do not
/// read their standard input).
pub(crate) async fn attach(conn: Conn, runtime: Arc<dyn Runtime>, id: String, tty: bool) {
    let Conn {
        protocol,
        stdin,
        resize,
        out,
        gone,
    } = conn;
    for mut rx in [stdin, resize].into_iter().flatten() {
        tokio::spawn(async move { while rx.recv().await.is_some() {} });
    }
    let Some(log) = runtime.log(&id) else {
        out.send(
            Channel::Error,
            &outcome(&protocol, &[], &Err(RuntimeError::NotFound(id))),
        );
        return;
    };
    let mut offset = log.lock().end();
    let mut exits = runtime.exits();
    loop {
        let (chunk, end) = log.lock().read_from(offset);
        offset = end;
        for entry in crate::kubelet::runtime::log::entries(&chunk) {
            let mut data = entry.text.to_vec();
            if !entry.partial {
                data.push(b'\n');
            }
            let channel = match entry.stream {
                Stream::Stderr if !tty => Channel::Stderr,
                _ => Channel::Stdout,
            };
            let data = if tty { onlcr(&data) } else { data };
            out.send(channel, &data);
        }
        let running = matches!(
            runtime.state(&id),
            Some(crate::kubelet::runtime::ProcessState::Running { .. })
        );
        if !running {
            let (rest, _) = log.lock().read_from(offset);
            if rest.is_empty() {
                break;
            }
            continue;
        }
        tokio::select! {
            _ = gone.cancelled() => return,
            _ = exits.changed() => {}
            _ = tokio::time::sleep(std::time::Duration::from_millis(50)) => {}
        }
    }
    out.send(Channel::Error, &outcome(&protocol, &[], &Ok(0)));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(q: &str) -> Vec<(String, String)> {
        serde_urlencoded::from_str(q).unwrap()
    }

    #[test]
    fn options_are_read_as_the_kubelet_reads_them() {
        let (command, wants) = options(&pairs(
            "command=sh&command=-c&command=exit+3&output=1&error=1",
        ))
        .unwrap();
        assert_eq!(command, ["sh", "-c", "exit 3"]);
        assert!(wants.stdout && wants.stderr && !wants.stdin && !wants.tty);
        let (_, tty) = options(&pairs("command=sh&input=1&output=1&error=1&tty=1")).unwrap();
        assert!(tty.tty && !tty.stderr, "a TTY has no separate stderr");
        assert_eq!(
            options(&pairs("command=ls")).unwrap_err(),
            "you must specify at least 1 of stdin, stdout, stderr"
        );
    }

    #[test]
    fn exit_codes_travel_as_upstream_writes_them() {
        let argv = vec!["sh".to_string(), "-c".into(), "exit 3".into()];
        let status: serde_json::Value =
            serde_json::from_slice(&outcome(super::super::V4, &argv, &Ok(3))).unwrap();
        assert_eq!(
            status,
            json!({"metadata": {}, "status": "Failure",
                "message": "command terminated with non-zero exit code: error executing command [sh -c exit 3], exit code 3",
                "reason": "NonZeroExitCode",
                "details": {"causes": [{"reason": "ExitCode", "message": "3"}]}})
        );
        assert_eq!(
            outcome(super::super::V5, &argv, &Ok(0)),
            br#"{"metadata":{},"status":"Success"}"#
        );
        assert!(outcome(super::super::V2, &argv, &Ok(0)).is_empty());
    }
}
