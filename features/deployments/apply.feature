Feature: A Deployment becomes Ready pods
  Applying a Deployment makes a ReplicaSet, which creates the pods; the scheduler binds them,
  the kubelet pulls the image and starts the containers, and the pods turn Ready.

  Background:
    Given a cluster with 1 node

  Scenario: Every step of the lifecycle leaves its event, in order
    When I apply fixtures/web-deployment.yaml
    Then within 60 seconds deployment web is rolled out
    And within 10 seconds deployment web has 3 ready pods
    And deployment web has events exactly:
      | type   | reason            | message                                    | times |
      | Normal | ScalingReplicaSet | Scaled up replica set web-* from 0 to 3    | 1     |
    And within 10 seconds the pods of deployment web have events in this order:
      | type   | reason    | message                                       |
      | Normal | Scheduled | Successfully assigned */web-* to *              |
      | Normal | Pulling   | Pulling image "nginx:1.27"                    |
      | Normal | Pulled    | *image "nginx:1.27"*                          |
      | Normal | Created   | Created container: web                        |
      | Normal | Started   | Started container web                         |
    And within 10 seconds deployment web has condition Available True with reason MinimumReplicasAvailable
    And within 10 seconds deployment web has condition Progressing True with reason NewReplicaSetAvailable

  Scenario: The ReplicaSet creates its pods and names them after itself
    When I apply fixtures/web-deployment.yaml
    Then within 60 seconds deployment web has 3 ready pods
    And within 10 seconds deployment web has replica sets:
      | image      | replicas |
      | nginx:1.27 | 3        |
    And the pods of deployment web never had events:
      | type    | reason           |
      | Warning | FailedScheduling |
      | Warning | Failed           |
      | Warning | BackOff          |

  Scenario: kubectl shows the pods as Running and Ready
    When I apply fixtures/web-deployment.yaml
    Then within 60 seconds the pods of deployment web show STATUS Running
    And within 10 seconds the pods of deployment web show READY 1/1
    And within 10 seconds the pods of deployment web have condition Ready True
    And within 10 seconds container web of the pods of deployment web is running
