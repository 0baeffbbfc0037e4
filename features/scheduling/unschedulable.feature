Feature: Pods the scheduler cannot place
  A pod that fits on no node stays Pending with PodScheduled=False and a FailedScheduling event
  that says why; it is scheduled as soon as the cluster changes so that it fits.

  @needs:topology @needs:add-node
  Scenario: A pod too big for every node waits until a big enough node joins
    Given a cluster with 2 nodes of 2 CPU and 4Gi memory
    When I apply:
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: big
      spec:
        containers:
        - name: app
          image: registry.k8s.io/pause:3.10
          resources:
            requests:
              cpu: "3"
      """
    Then within 30 seconds pod big has condition PodScheduled False with reason Unschedulable
    And within 30 seconds pod big has events in this order:
      | type    | reason           | message                                                                 |
      | Warning | FailedScheduling | 0/2 nodes are available: 2 Insufficient cpu. preemption: 0/2 nodes are available: 2 No preemption victims found for incoming pod. |
    And within 10 seconds pod big shows STATUS Pending
    When a node node-3 with 4 CPU and 8Gi memory joins the cluster
    Then within 60 seconds pod big is Running
    And within 10 seconds pod big has events in this order:
      | type    | reason           | message                                    |
      | Warning | FailedScheduling | 0/2 nodes are available: 2 Insufficient cpu* |
      | Normal  | Scheduled        | Successfully assigned */big to node-3      |
      | Normal  | Started          | Started container app                      |

  Scenario: A node selector no node matches
    Given a cluster with 1 node
    When I apply:
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: picky
      spec:
        nodeSelector:
          disktype: ssd
        containers:
        - name: app
          image: registry.k8s.io/pause:3.10
      """
    Then within 30 seconds pod picky has condition PodScheduled False with reason Unschedulable
    And within 30 seconds pod picky has events in this order:
      | type    | reason           | message                                                                         |
      | Warning | FailedScheduling | 0/* nodes are available: * node(s) didn't match Pod's node affinity/selector.* |
    And pod picky never had events:
      | reason    |
      | Scheduled |
