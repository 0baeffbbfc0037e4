Feature: Init containers and sidecars
  Init containers run one after another to completion before the app containers start; a
  restartable init container (restartPolicy Always) is a sidecar that keeps running beside them.

  Background:
    Given a cluster with 1 node

  Scenario: Init containers run in order before the app container
    When I apply:
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: with-init
      spec:
        initContainers:
        - name: first
          image: busybox:1.36
          command: ["sh", "-c", "sleep 2"]
        - name: second
          image: busybox:1.36
          command: ["sh", "-c", "sleep 2"]
        containers:
        - name: app
          image: registry.k8s.io/pause:3.10
      """
    Then within 10 seconds pod with-init shows STATUS Init:0/2
    And within 60 seconds pod with-init is ready
    And within 10 seconds container first of pod with-init has terminated with reason Completed and exit code 0
    And within 10 seconds container second of pod with-init has terminated with reason Completed and exit code 0
    And within 10 seconds pod with-init has events in this order:
      | reason  | message                  |
      | Started | Started container first  |
      | Started | Started container second |
      | Started | Started container app    |

  Scenario: A failing init container blocks the app container and is retried
    When I apply:
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: blocked
      spec:
        initContainers:
        - name: check
          image: busybox:1.36
          command: ["sh", "-c", "exit 1"]
        containers:
        - name: app
          image: registry.k8s.io/pause:3.10
      """
    Then within 60 seconds container check of pod blocked has restarted at least 2 times
    And within 30 seconds pod blocked shows STATUS Init:CrashLoopBackOff
    And within 10 seconds pod blocked is Pending
    And pod blocked never had events:
      | reason  | message               |
      | Started | Started container app |

  Scenario: A sidecar starts before the app container and keeps running
    When I apply:
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: with-sidecar
      spec:
        initContainers:
        - name: proxy
          image: registry.k8s.io/e2e-test-images/agnhost:2.53
          args: ["netexec", "--http-port=9000"]
          restartPolicy: Always
          startupProbe:
            tcpSocket: {port: 9000}
            periodSeconds: 1
        containers:
        - name: app
          image: registry.k8s.io/pause:3.10
      """
    Then within 60 seconds pod with-sidecar is ready
    And within 10 seconds pod with-sidecar shows READY 2/2
    And within 10 seconds container proxy of pod with-sidecar is running
    And within 10 seconds container app of pod with-sidecar is running
    And within 10 seconds pod with-sidecar has events in this order:
      | reason  | message                 |
      | Started | Started container proxy |
      | Started | Started container app   |
