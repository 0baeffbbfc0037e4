Feature: Scaling a Deployment
  The Deployment controller scales its ReplicaSet; the ReplicaSet creates or deletes pods.

  Background:
    Given a cluster with 2 nodes
    And I apply fixtures/web-deployment.yaml
    And within 60 seconds deployment web is rolled out

  Scenario: Scale up
    When I scale deployment web to 5 replicas
    Then within 60 seconds deployment web has 5 ready pods
    And within 10 seconds deployment web has 5 ready replicas
    And deployment web has events exactly:
      | type   | reason            | message                                 | times |
      | Normal | ScalingReplicaSet | Scaled up replica set web-* from 0 to 3 | 1     |
      | Normal | ScalingReplicaSet | Scaled up replica set web-* from 3 to 5 | 1     |

  Scenario: Scale down
    When I scale deployment web to 1 replica
    Then within 60 seconds deployment web has 1 ready pod
    And within 10 seconds deployment web has 1 ready replica
    And within 10 seconds deployment web has events in this order:
      | type   | reason            | message                                   |
      | Normal | ScalingReplicaSet | Scaled up replica set web-* from 0 to 3   |
      | Normal | ScalingReplicaSet | Scaled down replica set web-* from 3 to 1 |
    And within 10 seconds replicaset web-* has events in this order:
      | type   | reason           | message              |
      | Normal | SuccessfulCreate | Created pod: web-*   |
      | Normal | SuccessfulDelete | Deleted pod: web-*   |
    And replicaset web-* has events exactly:
      | reason           | times |
      | SuccessfulCreate | 3     |
      | SuccessfulDelete | 2     |

  Scenario: Proportional scaling spreads new replicas over both ReplicaSets during a rollout
    # 10 replicas, maxSurge 3, maxUnavailable 2: an update to an image that cannot be pulled gets
    # stuck with 8 old and 5 new pods. Scaling to 15 adds the 5 new replicas in proportion (3 old,
    # 2 new), as upstream's proportional scaling does.
    When I apply:
      """
      apiVersion: apps/v1
      kind: Deployment
      metadata:
        name: wide
      spec:
        replicas: 10
        selector:
          matchLabels: {app: wide}
        strategy:
          rollingUpdate: {maxSurge: 3, maxUnavailable: 2}
        template:
          metadata:
            labels: {app: wide}
          spec:
            containers:
            - name: app
              image: registry.k8s.io/pause:3.10
      """
    And within 60 seconds deployment wide is rolled out
    And I set the image of deployment wide to registry.k8s.io/pause:does-not-exist
    Then within 30 seconds deployment wide has replica sets:
      | image                                   | replicas |
      | registry.k8s.io/pause:3.10              | 8        |
      | registry.k8s.io/pause:does-not-exist    | 5        |
    When I scale deployment wide to 15 replicas
    Then within 30 seconds deployment wide has replica sets:
      | image                                   | replicas |
      | registry.k8s.io/pause:3.10              | 11       |
      | registry.k8s.io/pause:does-not-exist    | 7        |
