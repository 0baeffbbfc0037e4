Feature: The control plane as pods
  Like a kubeadm node, the first node runs the control plane's components as static pods: the
  kubelet shows them as mirror pods in kube-system, named after the node, and probes each
  component's health endpoints as kubeadm's manifests say. So the pods follow the components:
  a scheduler that stops answering turns its pod unready at once (readiness every second, three
  failures) and has its container restarted after eight failed liveness probes ten seconds
  apart (on a kubeadm node a dead scheduler's port refuses the connection; where it ran on a
  machine of its own, its name no longer resolves). kube-proxy runs as a DaemonSet: one pod on
  every node, kube-proxy-xxxxx.

  @needs:control-plane-pods
  Scenario: The apiserver, controller-manager and scheduler run as ready mirror pods
    Given a cluster with 2 nodes
    Then within 60 seconds pod kube-system/kube-apiserver-* is Running
    And within 60 seconds pod kube-system/kube-controller-manager-* is Running
    And within 60 seconds pod kube-system/kube-scheduler-* is Running
    And within 60 seconds pod kube-system/kube-apiserver-* is ready
    And within 60 seconds pod kube-system/kube-controller-manager-* is ready
    And within 60 seconds pod kube-system/kube-scheduler-* is ready

  @needs:control-plane-pods @needs:topology @needs:kill-leader
  Scenario: A killed scheduler's pod turns unready and is restarted by its liveness probe
    Given a cluster with 1 node
    And 1 controller-manager replica and 1 scheduler replica
    And within 60 seconds pod kube-system/kube-scheduler-* is ready
    When the leading scheduler is killed
    Then within 30 seconds pod kube-system/kube-scheduler-* is not ready
    And within 3 minutes container kube-scheduler of pod kube-system/kube-scheduler-* has restarted at least 1 time
    And within 10 seconds pod kube-system/kube-scheduler-* has events in this order:
      | type    | reason    | message                                                                   |
      | Warning | Unhealthy | Readiness probe failed: Get "http://*/readyz": dial tcp*                |
      | Warning | Unhealthy | Liveness probe failed: Get "http://*/livez": dial tcp*                  |
      | Normal  | Killing   | Container kube-scheduler failed liveness probe, will be restarted        |
    And within 10 seconds pod kube-system/kube-controller-manager-* is ready

  @needs:control-plane-pods @needs:add-node
  Scenario: Every node runs a kube-proxy pod of kube-proxy's DaemonSet, a node that joins too
    Given a cluster with 2 nodes
    Then within 60 seconds node node-1 runs pod kube-system/kube-proxy-*
    And within 60 seconds node node-2 runs pod kube-system/kube-proxy-*
    When a node node-3 joins the cluster
    Then within 60 seconds node node-3 runs pod kube-system/kube-proxy-*
    And within 30 seconds pod kube-system/kube-proxy-* is ready
