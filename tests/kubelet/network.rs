//! Traffic between pods from inside their containers, as e2e tests drive it with busybox's
//! `wget` and `nc`: each pod reaches the others' real sockets from its own IP, and a Service's
//! ClusterIP goes where the node's kube-proxy sends it; and who a container's processes are
//! (`id`).

use super::*;

const AGNHOST: &str = "registry.k8s.io/e2e-test-images/agnhost:2.53";

/// Pod `name`'s IP once its first container runs; else its status.
fn running_ip(s: &State, name: &str) -> Result<String, String> {
    running(s, name)?;
    let p = seen::pod_json(s, name);
    p["status"]["podIP"]
        .as_str()
        .map(String::from)
        .ok_or_else(|| p["status"].to_string())
}

/// Whether something accepts connections on `ip:port` (from the test, a few seconds at most).
async fn accepting(ip: &str, port: u16) -> Result<(), String> {
    let connect = tokio::net::TcpStream::connect((ip, port));
    match tokio::time::timeout(Duration::from_secs(5), connect).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(format!("{ip}:{port}: {e}")),
        Err(_) => Err(format!("{ip}:{port}: timed out")),
    }
}

/// The log of pod `name` once it has Succeeded.
async fn log_when_done(client: &Client, waits: &Waits, name: &str) -> String {
    waits
        .until(minutes(10), &format!("{name} Succeeded"), |s| {
            in_phase(s, name, "Succeeded").map(|_| ())
        })
        .await;
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    pods.logs(name, &Default::default()).await.unwrap()
}

#[tokio::test]
async fn busybox_reaches_other_pods_with_wget_and_nc_and_cluster_ips_through_kube_proxy() {
    let (cluster, client, waits) = one_node().await;
    let services: Api<Service> = Api::default_namespaced(client.clone());
    let nothing: Service = serde_json::from_value(json!({
        "metadata": {"name": "nothing"},
        "spec": {"selector": {"app": "nothing-has-this"}, "ports": [{"port": 80}]}}))
    .unwrap();
    let nothing_ip = services
        .create(&Default::default(), &nothing)
        .await
        .unwrap()
        .spec
        .and_then(|s| s.cluster_ip)
        .unwrap();
    create_pod(
        &client,
        json!({"metadata": {"name": "web"}, "spec": {"containers": [{
            "name": "nginx", "image": "nginx:1.27"}]}}),
    )
    .await;
    create_pod(
        &client,
        json!({"metadata": {"name": "netexec"}, "spec": {"containers": [{
            "name": "netexec", "image": AGNHOST,
            "args": ["netexec", "--http-port=8080", "--udp-port=8081"]}]}}),
    )
    .await;
    let web = waits
        .until(minutes(10), "web running", |s| running_ip(s, "web"))
        .await;
    let netexec = waits
        .until(minutes(10), "netexec running", |s| running_ip(s, "netexec"))
        .await;
    for (ip, port) in [(&web, 80), (&netexec, 8080)] {
        waits
            .until_async(minutes(2), "the server listening", || accepting(ip, port))
            .await;
    }
    let cluster_ip = services
        .get("kubernetes")
        .await
        .unwrap()
        .spec
        .unwrap()
        .cluster_ip
        .unwrap();
    let script = format!(
        "wget -q -O - http://{web}/ | grep '<h1>'
         wget -q -O - http://{netexec}:8080/hostname; echo
         wget -T 2 -q -O - http://{netexec}:8080/clientip | cut -d: -f1
         nc -z -w 1 {netexec} 8080; echo open=$?
         nc -z -w 1 {netexec} 8079; echo closed=$?
         echo hostname | nc -u -w 1 {netexec} 8081; echo
         wget -S --spider http://{web}/missing 2>&1 | tail -n 1
         wget -T 1 -q -O - http://{nothing_ip}/; echo noendpoints=$?
         nc -zv -w 1 {nothing_ip} 81; echo otherport=$?
         nc -z -w 1 {cluster_ip} 443; echo apiserver=$?"
    );
    create_pod(
        &client,
        json!({"metadata": {"name": "client"}, "spec": {"restartPolicy": "Never",
            "containers": [{"name": "client", "image": "busybox:1.36",
                "command": ["sh", "-c", script]}]}}),
    )
    .await;
    let log = log_when_done(&client, &waits, "client").await;
    let client_ip = waits
        .until(minutes(1), "the client's IP", |s| {
            seen::pod_json(s, "client")["status"]["podIP"]
                .as_str()
                .map(String::from)
                .ok_or_else(|| "no IP".to_string())
        })
        .await;
    assert_eq!(
        log,
        format!(
            "<h1>Welcome to nginx!</h1>\nnetexec\n{client_ip}\nopen=0\nclosed=1\nnetexec\n\
             wget: server returned error: HTTP/1.1 404 Not Found\n\
             wget: can't connect to remote host ({nothing_ip}): Connection refused\n\
             noendpoints=1\n\
             nc: {nothing_ip} ({nothing_ip}:81): Connection timed out\notherport=1\n\
             apiserver=0\n"
        )
    );
    cluster
        .stop(std::time::Duration::from_secs(10))
        .await
        .expect("the cluster stops");
}

#[tokio::test]
async fn id_shows_the_user_and_groups_of_the_security_context() {
    let (cluster, client, waits) = one_node().await;
    // e2e's "should support pod.Spec.SecurityContext.RunAsUser And ...RunAsGroup", with the
    // pod's groups, and what the user may not write.
    create_pod(
        &client,
        json!({"metadata": {"name": "ids"}, "spec": {"restartPolicy": "Never",
            "securityContext": {"runAsUser": 1001, "runAsGroup": 2002,
                "supplementalGroups": [3003], "fsGroup": 4004},
            "containers": [{"name": "c", "image": "busybox:1.36",
                "command": ["sh", "-c", "id; id -G; whoami; touch /x; touch /tmp/x && echo tmp ok"]}]}}),
    )
    .await;
    // "should support pod.Spec.SecurityContext.SupplementalGroups": root keeps its image groups.
    create_pod(
        &client,
        json!({"metadata": {"name": "groups"}, "spec": {"restartPolicy": "Never",
            "securityContext": {"supplementalGroups": [1234, 5678]},
            "containers": [{"name": "c", "image": "busybox:1.36", "command": ["id", "-G"]}]}}),
    )
    .await;
    assert_eq!(
        log_when_done(&client, &waits, "ids").await,
        "uid=1001 gid=2002 groups=2002,3003,4004\n2002 3003 4004\n\
         whoami: unknown uid 1001\ntouch: /x: Permission denied\ntmp ok\n"
    );
    assert_eq!(
        log_when_done(&client, &waits, "groups").await,
        "0 10 1234 5678\n"
    );
    cluster
        .stop(std::time::Duration::from_secs(10))
        .await
        .expect("the cluster stops");
}
