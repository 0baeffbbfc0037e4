Feature: Leader election of the controller-manager and the scheduler
  Replicas campaign for a Lease in kube-system; only the holder works. A killed leader's Lease
  runs out (15 s) before another replica takes over. A stopped kube-scheduler releases its Lease
  and hands over at once; a stopped kube-controller-manager does not (upstream sets no
  ReleaseOnCancel for it).

  @needs:topology @needs:kill-leader
  Scenario: A killed controller-manager leader is replaced, and the new leader reconciles
    Given a cluster with 1 node
    And 3 controller-manager replicas and 1 scheduler replica
    And I apply fixtures/web-deployment.yaml
    And within 60 seconds deployment web is rolled out
    When the leading controller-manager is killed
    And I scale deployment web to 4 replicas
    Then within 30 seconds another controller-manager leads
    And within 60 seconds deployment web has 4 ready pods
    And lease kube-controller-manager has events exactly:
      | reason         | message            | times |
      | LeaderElection | * became leader    | 2     |
      | LeaderElection | * stopped leading  | 0     |

  @needs:topology @needs:stop-leader
  Scenario: A stopped controller-manager leader does not release its Lease
    Given a cluster with 1 node
    And 2 controller-manager replicas and 1 scheduler replica
    When the leading controller-manager is stopped
    Then within 30 seconds another controller-manager leads
    And lease kube-controller-manager never had events:
      | reason         | message           |
      | LeaderElection | * stopped leading |

  @needs:topology @needs:kill-leader
  Scenario: A killed scheduler leader is replaced, and the new leader binds pods
    Given a cluster with 1 node
    And 1 controller-manager replica and 2 scheduler replicas
    When the leading scheduler is killed
    And I apply:
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: late
      spec:
        containers:
        - name: app
          image: registry.k8s.io/pause:3.10
      """
    Then within 30 seconds another scheduler leads
    And within 30 seconds pod late is Running
    And within 10 seconds pod late has events in this order:
      | reason    | message                          |
      | Scheduled | Successfully assigned */late to node-1 |

  @needs:topology @needs:stop-leader
  Scenario: A stopped scheduler leader releases its Lease and another takes over at once
    Given a cluster with 1 node
    And 1 controller-manager replica and 2 scheduler replicas
    When the leading scheduler is stopped
    Then within 5 seconds another scheduler leads
