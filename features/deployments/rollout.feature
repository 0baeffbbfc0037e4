Feature: Rolling out new versions of a Deployment
  A new pod template gets a new ReplicaSet; the controller moves replicas from the old one to
  the new one within maxSurge and maxUnavailable, or all at once with Recreate.

  Background:
    Given a cluster with 2 nodes
    And I apply fixtures/web-deployment.yaml
    And within 60 seconds deployment web is rolled out

  Scenario: A rolling update replaces the pods one at a time
    When I set the image of deployment web to nginx:1.28
    Then within 90 seconds deployment web is rolled out
    And within 10 seconds deployment web is at revision 2
    And within 10 seconds deployment web has replica sets:
      | image      | replicas |
      | nginx:1.27 | 0        |
      | nginx:1.28 | 3        |
    And the lifecycle of deployment web matches snapshot rolling-update

  Scenario: Rolling back returns to the previous template as a new revision
    When I set the image of deployment web to nginx:1.28
    And within 90 seconds deployment web is rolled out
    And I roll back deployment web
    Then within 90 seconds deployment web is rolled out
    And within 10 seconds deployment web is at revision 3
    And within 10 seconds deployment web has replica sets:
      | image      | replicas |
      | nginx:1.27 | 3        |
      | nginx:1.28 | 0        |
    And within 10 seconds the pods of deployment web have events in this order:
      | reason  | message                       |
      | Pulled  | *image "nginx:1.27"*          |
      | Started | Started container web         |

  Scenario: A paused rollout waits until it is resumed
    When I pause the rollout of deployment web
    And I set the image of deployment web to nginx:1.28
    And 20 seconds pass
    Then within 10 seconds deployment web has replica sets:
      | image      | replicas |
      | nginx:1.27 | 3        |
    And within 10 seconds deployment web is at revision 1
    When I resume the rollout of deployment web
    Then within 90 seconds deployment web is rolled out
    And within 10 seconds deployment web is at revision 2

  Scenario: Recreate stops every old pod before it starts a new one
    When I apply:
      """
      apiVersion: apps/v1
      kind: Deployment
      metadata:
        name: batch
      spec:
        replicas: 2
        selector:
          matchLabels: {app: batch}
        strategy:
          type: Recreate
        template:
          metadata:
            labels: {app: batch}
          spec:
            containers:
            - name: app
              image: nginx:1.27
      """
    And within 60 seconds deployment batch is rolled out
    And I set the image of deployment batch to nginx:1.28
    Then within 60 seconds deployment batch is rolled out
    And within 10 seconds deployment batch has events in this order:
      | type   | reason            | message                                     |
      | Normal | ScalingReplicaSet | Scaled up replica set batch-* from 0 to 2   |
      | Normal | ScalingReplicaSet | Scaled down replica set batch-* from 2 to 0 |
      | Normal | ScalingReplicaSet | Scaled up replica set batch-* from 0 to 2   |
    And the lifecycle of deployment batch matches snapshot recreate
