Feature: Static pods
  A kubelet runs the pod manifests in its static pod directory itself and shows each as a
  mirror pod named after the node.

  @needs:static-pods
  Scenario: A manifest in the static pod directory runs as a mirror pod
    Given a cluster with 1 node
    And a static pod manifest static-web.yaml on node node-1:
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: static-web
      spec:
        containers:
        - name: web
          image: nginx:1.27
      """
    Then within 60 seconds pod static-web-node-1 is Running
    And within 30 seconds pod static-web-node-1 is ready
    And within 10 seconds pod static-web-node-1 has events in this order:
      | reason  | message               |
      | Started | Started container web |
