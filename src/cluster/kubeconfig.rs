//! Reaching a cluster through a kubeconfig file, as kubectl does: the file named on the command
//! line, else the first file in `$KUBECONFIG`, else `~/.kube/config`; its current context unless
//! one is named. Used by the components run on their own and by the harness's kubeconfig target.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// Errors reaching a cluster through a kubeconfig.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No kubeconfig was named and none was found.
    #[error("no kubeconfig given and none found (pass --kubeconfig PATH, or set KUBECONFIG)")]
    NotFound,
    /// The file could not be read or parsed.
    #[error("cannot read the kubeconfig {path}: {cause}")]
    Read {
        /// The file.
        path: PathBuf,
        /// kube's error, in words (kube repeats its causes in its own messages).
        cause: String,
    },
    /// The context does not exist or names no usable cluster or user.
    #[error("the kubeconfig {path} has no usable context {context} (its contexts: {available}): {cause}")]
    Context {
        /// The file.
        path: PathBuf,
        /// The context asked for (or "current-context").
        context: String,
        /// The contexts the file has.
        available: String,
        /// kube's error, in words.
        cause: String,
    },
    /// A client could not be built from the configuration.
    #[error("cannot build a client for {server} from {path}: {cause}")]
    Client {
        /// The server URL.
        server: String,
        /// The file.
        path: PathBuf,
        /// kube's error, in words.
        cause: String,
    },
    /// The cluster did not answer.
    #[error("cannot reach the cluster at {server} (kubeconfig {path}, context {context}): {cause}. Is the cluster running? For the reference cluster, start `kubespec up` first and pass the kubeconfig it writes")]
    Unreachable {
        /// The server URL.
        server: String,
        /// The file.
        path: PathBuf,
        /// The context used.
        context: String,
        /// What went wrong.
        cause: String,
    },
}

/// Result type of this module.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A cluster reached through a kubeconfig, checked to answer.
#[derive(Clone)]
pub struct Connection {
    /// The client.
    pub client: kube::Client,
    /// The server URL.
    pub server: String,
    /// The kubeconfig file used.
    pub path: PathBuf,
    /// The context used.
    pub context: String,
    /// The server's `gitVersion`.
    pub version: String,
}

/// The kubeconfig to use: `explicit`, else the first entry of `$KUBECONFIG`, else
/// `~/.kube/config` if it exists.
pub fn locate(explicit: Option<&Path>) -> Option<PathBuf> {
    if let Some(p) = explicit {
        return Some(p.to_path_buf());
    }
    if let Some(first) = std::env::var_os("KUBECONFIG")
        .as_deref()
        .and_then(|v| std::env::split_paths(v).find(|p| !p.as_os_str().is_empty()))
    {
        return Some(first);
    }
    let home = std::env::var_os("HOME").map(PathBuf::from)?;
    let default = home.join(".kube").join("config");
    default.exists().then_some(default)
}

/// Connect to the cluster of `kubeconfig` (see [`locate`]) in `context` (its current context
/// if `None`) and check that it answers within `timeout`.
///
/// # Errors
/// Each [`Error`] variant names the file, the context or the server and says what to do.
pub async fn connect(
    kubeconfig: Option<&Path>,
    context: Option<&str>,
    timeout: Duration,
) -> Result<Connection> {
    connect_as(kubeconfig, context, timeout, None).await
}

/// [`connect`], for a component: its client sends the component's User-Agent (which names it
/// as the field manager of its writes).
///
/// # Errors
/// As [`connect`].
pub async fn connect_as(
    kubeconfig: Option<&Path>,
    context: Option<&str>,
    timeout: Duration,
    component: Option<&str>,
) -> Result<Connection> {
    let path = locate(kubeconfig).ok_or(Error::NotFound)?;
    let file = kube::config::Kubeconfig::read_from(&path).map_err(|e| Error::Read {
        path: path.clone(),
        cause: match &e {
            kube::config::KubeconfigError::ReadConfig(io, _) => io.to_string(),
            other => other.to_string(),
        },
    })?;
    let available = file
        .contexts
        .iter()
        .map(|c| c.name.clone())
        .collect::<Vec<_>>()
        .join(", ");
    let context_name = context
        .map(str::to_string)
        .or_else(|| file.current_context.clone())
        .unwrap_or_else(|| "current-context".into());
    let options = kube::config::KubeConfigOptions {
        context: context.map(str::to_string),
        ..Default::default()
    };
    let config = kube::Config::from_custom_kubeconfig(file, &options)
        .await
        .map_err(|e| Error::Context {
            path: path.clone(),
            context: context_name.clone(),
            available: if available.is_empty() {
                "none".into()
            } else {
                available
            },
            cause: e.to_string(),
        })?;
    let mut config = config;
    if let Some(agent) = component
        .map(crate::k8s::user_agent)
        .and_then(|a| http::HeaderValue::from_str(&a).ok())
    {
        config.headers.push((http::header::USER_AGENT, agent));
    }
    let server = config.cluster_url.to_string();
    let server = server.trim_end_matches('/').to_string();
    let client = kube::Client::try_from(config).map_err(|e| Error::Client {
        server: server.clone(),
        path: path.clone(),
        cause: e.to_string(),
    })?;
    let unreachable = |cause: String| Error::Unreachable {
        server: server.clone(),
        path: path.clone(),
        context: context_name.clone(),
        cause,
    };
    let version = match tokio::time::timeout(timeout, client.apiserver_version()).await {
        Ok(Ok(v)) => v.git_version,
        Ok(Err(e)) => return Err(unreachable(format!("{e}"))),
        Err(_) => return Err(unreachable(format!("no answer within {timeout:?}"))),
    };
    Ok(Connection {
        client,
        server,
        path,
        context: context_name,
        version,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn errors_name_the_file_and_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        let err = connect(Some(&missing), None, Duration::from_secs(1))
            .await
            .err()
            .unwrap();
        assert!(err.to_string().contains("nope"), "{err}");

        let path = dir.path().join("kubeconfig");
        // A port nothing listens on: connection refused.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        std::fs::write(
            &path,
            crate::cluster::kubeconfig_for(&format!("http://127.0.0.1:{port}")),
        )
        .unwrap();
        let err = connect(Some(&path), None, Duration::from_secs(5))
            .await
            .err()
            .unwrap();
        let msg = err.to_string();
        assert!(msg.contains(&format!("127.0.0.1:{port}")), "{msg}");
        assert!(msg.contains("kubespec up"), "{msg}");

        let err = connect(Some(&path), Some("other"), Duration::from_secs(1))
            .await
            .err()
            .unwrap();
        assert!(err.to_string().contains("its contexts: kubespec"), "{err}");
    }
}
