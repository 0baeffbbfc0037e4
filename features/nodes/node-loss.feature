Feature: Losing a node
  When a kubelet stops posting status, the node lifecycle controller marks the node NotReady
  after the grace period (50 s), taints it unreachable, marks its pods not ready, and evicts
  them once their toleration of the taint runs out.

  Background:
    Given a cluster with 2 nodes
    And I apply:
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: pinned
      spec:
        nodeSelector:
          kubernetes.io/hostname: node-2
        tolerations:
        - {key: node.kubernetes.io/unreachable, operator: Exists, effect: NoExecute, tolerationSeconds: 20}
        - {key: node.kubernetes.io/not-ready, operator: Exists, effect: NoExecute, tolerationSeconds: 20}
        containers:
        - name: app
          image: registry.k8s.io/pause:3.10
      """
    And within 60 seconds pod pinned is ready

  @needs:stop-node @needs:accelerated-time
  Scenario: A node whose kubelet stops goes NotReady, is tainted, and its pods are evicted
    When the kubelet of node node-2 stops
    Then within 80 seconds node node-2 has condition Ready Unknown with reason NodeStatusUnknown
    And within 10 seconds node node-2 has taint node.kubernetes.io/unreachable:NoExecute
    And within 10 seconds node node-2 has events in this order:
      | type   | reason       | message                                  |
      | Normal | NodeNotReady | Node node-2 status is now: NodeNotReady  |
    And within 10 seconds pod pinned is not ready
    And within 10 seconds pod pinned has events in this order:
      | type    | reason       | message           |
      | Warning | NodeNotReady | Node is not ready |
    And within 60 seconds pod pinned has events in this order:
      | type   | reason               | message                        |
      | Normal | TaintManagerEviction | Marking for deletion Pod */pinned |
    And within 10 seconds pod pinned is being deleted

  @needs:stop-node
  Scenario: A kubelet that comes back makes its node Ready again
    When the kubelet of node node-2 is killed
    Then within 80 seconds node node-2 is not ready
    When the kubelet of node node-2 restarts
    Then within 30 seconds node node-2 is ready
    And within 30 seconds node node-2 has no taint node.kubernetes.io/unreachable:NoExecute

  @needs:partition-node
  Scenario: A node cut off from the network goes NotReady, and is Ready again once it is back
    When node node-2 is cut off from the network
    Then within 80 seconds node node-2 has condition Ready Unknown with reason NodeStatusUnknown
    And within 10 seconds node node-2 has taint node.kubernetes.io/unreachable:NoExecute
    And within 10 seconds pod pinned has events in this order:
      | type    | reason       | message           |
      | Warning | NodeNotReady | Node is not ready |
    When node node-2 is connected to the network again
    Then within 60 seconds node node-2 is ready
    And within 30 seconds node node-2 has no taint node.kubernetes.io/unreachable:NoExecute

  @needs:pause-node
  Scenario: A paused node goes NotReady, and is Ready again once it resumes
    When node node-2 is paused
    Then within 80 seconds node node-2 has condition Ready Unknown with reason NodeStatusUnknown
    And within 10 seconds node node-2 has taint node.kubernetes.io/unreachable:NoExecute
    When node node-2 resumes
    Then within 60 seconds node node-2 is ready
    And within 30 seconds node node-2 has no taint node.kubernetes.io/unreachable:NoExecute
